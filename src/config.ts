/**
 * Every server setting in one table: name, flag, environment variable, type, default and meaning.
 * `loadConfig` resolves them with the precedence flags > AIAAS_* environment > JSON config file >
 * defaults, validates every value, and names both the flag and the variable in any error.
 * `docs/configuration.md` carries the same table; a test keeps the two in step.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { AiaasError } from './errors.ts';
import { describeJsonSyntaxError } from './data/json-syntax.ts';

const mebibyte = 1024 * 1024;

/** `maxModelParameters` when nothing sets it; docs/configuration.md explains the number. */
export const defaultMaxModelParameters = 50_000_000;
/** `jobMemoryLimitBytes` when nothing sets it: room for a model at `defaultMaxModelParameters` (docs/configuration.md). */
export const defaultJobMemoryLimitBytes = 8 * 1024 ** 3;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const logLevels: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
export type LogFormat = 'auto' | 'json' | 'pretty';
const logFormats: readonly LogFormat[] = ['auto', 'json', 'pretty'];

export interface AiaasConfig {
  host: string;
  port: number;
  dataDir: string;
  /** Resolved: `<dataDir>/aiaas.db` unless set. */
  databasePath: string;
  /** Resolved: `<dataDir>/keystore.db` unless set. */
  keyStorePath: string;
  logLevel: LogLevel;
  bodyLimitBytes: number;
  inferenceBodyLimitBytes: number;
  maxDatasetBytes: number;
  maxModelBytes: number;
  maxModelParameters: number;
  maxTensorElements: number;
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  jobConcurrency: number;
  maxConcurrentJobsPerTenant: number;
  jobLeaseMs: number;
  jobMemoryLimitBytes: number;
  modelMemoryBudgetBytes: number;
  modelIdleUnloadMs: number;
  inferenceThreads: number;
  inferenceParseThreads: number;
  inferenceInstances: number;
  inferenceWorkerNice: number;
  batchMaxSize: number;
  batchMaxQueueDelayMicroseconds: number;
  batchMaxQueueSize: number;
  warmup: boolean;
  validationTimeoutMs: number;
  validationMemoryBytes: number;
  masterKey: string | undefined;
  masterKeyFile: string | undefined;
  insecureDev: boolean;
  bootstrapKey: string | undefined;
  serverSecret: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  trustProxy: boolean;
  metricsPublic: boolean;
  llmParallel: number;
  llmMaxWaiting: number;
  llmThreads: number;
  llmContextLength: number;
  llmMaxContextLength: number;
  llmDefaultMaxTokens: number;
  llmMaxTokens: number;
  backupDir: string | undefined;
  backupIntervalSeconds: number;
  backupKeep: number;
  /** Host names a model pull may download from (empty: any public host); see docs/security.md. */
  pullAllowedHosts: readonly string[];
  pullAllowPrivate: boolean;
  pullMaxRedirects: number;
  /** How often the usage ledger writes what it buffered (0: only on reads and shutdown). */
  usageFlushIntervalMs: number;
  /** JSON file of plans (docs/billing.md, "Plans"); loaded at start. */
  plans: string | undefined;
  webhookAllowedHosts: readonly string[];
  webhookAllowPrivate: boolean;
  driftSampleRate: number;
  driftWindowSize: number;
  driftPsiThreshold: number;
  gateWaitSeconds: number;
  shadowMaxInFlight: number;
  /** How `aiaas serve` writes logs: `auto` is `pretty` on a terminal, else `json`. */
  logFormat: LogFormat;
  /** Model downloads run at once, apart from jobConcurrency. */
  pullConcurrency: number;
  /** At shutdown, how long running generations may finish before they are aborted. */
  shutdownGraceMs: number;
}

export type SettingName = keyof AiaasConfig;
type SettingType = 'string' | 'integer' | 'number' | 'boolean' | 'path' | 'secret' | 'enum';

export interface SettingDefinition {
  readonly name: SettingName;
  /** Command-line flag without the dashes, e.g. `data-dir`. */
  readonly flag: string;
  readonly env: string;
  readonly type: SettingType;
  /** As shown in the documentation table. */
  readonly defaultText: string;
  /** The value used when nothing sets it (undefined: unset, or derived like databasePath). */
  readonly defaultValue: string | number | boolean | undefined;
  readonly description: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly values?: readonly string[];
}

function bytesText(bytes: number): string {
  return bytes >= 1024 ** 3 && bytes % 1024 ** 3 === 0 ? `${bytes} (${bytes / 1024 ** 3} GiB)` : `${bytes} (${bytes / mebibyte} MiB)`;
}

function setting(
  name: SettingName,
  type: SettingType,
  defaultText: string,
  description: string,
  extra: Partial<Pick<SettingDefinition, 'minimum' | 'maximum' | 'values' | 'flag'>> = {},
): SettingDefinition {
  const flag = extra.flag ?? name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
  // The documented text is the source of the default too, so the table cannot drift from the code.
  const leading = defaultText.split(' ')[0]!;
  const defaultValue =
    type === 'integer' || type === 'number'
      ? Number(leading)
      : type === 'boolean'
        ? defaultText === 'true'
        : defaultText.startsWith('(') || defaultText.startsWith('<')
          ? undefined
          : defaultText;
  return { name, env: `AIAAS_${flag.replace(/-/g, '_').toUpperCase()}`, type, defaultText, defaultValue, description, ...extra, flag };
}

export const settingDefinitions: readonly SettingDefinition[] = [
  setting('host', 'string', '127.0.0.1', 'Interface to listen on. Use 0.0.0.0 only behind TLS or a trusted network.'),
  setting('port', 'integer', '8080', 'TCP port (0 picks a free one).', { minimum: 0, maximum: 65535 }),
  setting('dataDir', 'path', './aiaas-data', 'Directory for the database, encrypted artifacts and the server secret.'),
  setting('databasePath', 'path', '<dataDir>/aiaas.db', 'SQLite database file.'),
  setting(
    'keyStorePath',
    'path',
    '<dataDir>/keystore.db',
    'Key store: SQLite file holding the wrapped tenant data keys and master key-check values. Backups never copy it, so deleting a tenant also shreds its data in every earlier backup.',
    { flag: 'key-store' },
  ),
  setting('logLevel', 'enum', 'info', 'pino log level.', { values: logLevels }),
  setting('bodyLimitBytes', 'integer', bytesText(64 * mebibyte), 'Largest request body on /api/v1 read into memory (datasets, saved-model .tar, multipart); larger bodies get 413. Streamed .onnx uploads are bounded by maxModelBytes instead.', { minimum: 1024 }),
  setting('inferenceBodyLimitBytes', 'integer', bytesText(8 * mebibyte), 'Largest request body on the V2 and TF-Serving routes.', { minimum: 1024 }),
  setting('maxDatasetBytes', 'integer', bytesText(512 * mebibyte), 'Largest dataset after gunzip; larger uploads get 413.', { minimum: 1024 }),
  setting('maxModelBytes', 'integer', bytesText(64 * 1024 * mebibyte), 'Largest uploaded model file, with its external-data files counted in; a bare .onnx body streams to encrypted storage (never held in memory), a .tar or multipart upload is bounded by bodyLimitBytes too.', { minimum: 1024 }),
  setting('maxModelParameters', 'integer', String(defaultMaxModelParameters), 'Most parameters a model spec may have, checked from shapes before anything is allocated: for training jobs (400 TOO_MANY_PARAMETERS) and uploaded saved models (spec.json).', { minimum: 1 }),
  setting('maxTensorElements', 'integer', String(4 * mebibyte), 'Most elements in one inference input tensor; more gets 413 TOO_MANY_ELEMENTS.', { minimum: 1 }),
  setting('rateLimitPerSecond', 'number', '50', 'Requests per second per API key (token bucket refill).', { minimum: 0.001 }),
  setting('rateLimitBurst', 'integer', '100', 'Burst size per API key (token bucket capacity).', { minimum: 1 }),
  setting('jobConcurrency', 'integer', '1', 'Training, evaluation and quantization jobs run at once by this server (training: one child process each); model downloads have their own pullConcurrency.', { minimum: 1, maximum: 64 }),
  setting('maxConcurrentJobsPerTenant', 'integer', '4', 'Unfinished (queued or running) training jobs one tenant may have; one more gets 429 QUOTA_EXCEEDED.', { minimum: 1 }),
  setting('jobLeaseMs', 'integer', '30000', 'Lease of a running job; a crashed worker\'s job is resumed after it expires.', { minimum: 1000 }),
  setting('jobMemoryLimitBytes', 'integer', bytesText(defaultJobMemoryLimitBytes), 'Memory limit (RSS, native memory included) of one training job\'s process; above it the process is killed and the job fails with JOB_MEMORY_EXCEEDED.', { minimum: 64 * mebibyte }),
  setting('modelMemoryBudgetBytes', 'integer', bytesText(2048 * mebibyte), 'Memory for loaded models; beyond it, the least recently used idle model of the tenant furthest over its fair share (the budget divided by the tenants with a model loaded) is unloaded.', { minimum: mebibyte }),
  setting('modelIdleUnloadMs', 'integer', '900000', 'Unload a model unused for this long (0 = never).', { minimum: 0 }),
  setting('inferenceThreads', 'integer', '1', 'ONNX Runtime threads inside one run of one instance of a served model. 1 suits small models under concurrent load (instances, requests and batches give the parallelism); raise it for large models.', { minimum: 1, maximum: 64 }),
  setting('inferenceParseThreads', 'integer', '2', 'Worker threads that parse large JSON inference bodies (V2 over 64 KiB, which the main thread\'s V2 scanner leaves; TF-Serving from 1 KiB while other requests are in flight), so the main thread does not stall on a large body; bodies go to the thread with the fewest bytes waiting. 0 parses on the main thread.', { minimum: 0, maximum: 64 }),
  setting('inferenceInstances', 'integer', '1', 'Instances of each loaded ONNX model, each a worker thread with its own session: runs of one version that may execute at once (like Triton\'s instance groups). Up to the core count pays off for CPU-heavy models; each instance holds its own copy of the weights.', { minimum: 1, maximum: 64 }),
  setting('inferenceWorkerNice', 'integer', '10', 'Niceness (Linux scheduling priority, 0–19) added to the threads that run models and parse inference bodies, so that under load they do not preempt the main thread, which accepts, routes and answers every request. 0 runs them at the main thread\'s priority; other platforms ignore it.', { minimum: 0, maximum: 19 }),
  setting('batchMaxSize', 'integer', '64', 'Default dynamic batching: most rows merged into one run (1 disables merging).', { minimum: 1 }),
  setting('batchMaxQueueDelayMicroseconds', 'integer', '0', 'Default dynamic batching: how long a request may wait for others to join its batch.', { minimum: 0 }),
  setting('batchMaxQueueSize', 'integer', '1024', 'Default dynamic batching: waiting requests per model version before 503 QUEUE_FULL.', { minimum: 1 }),
  setting('warmup', 'boolean', 'true', 'Run one inference on zeros when a model loads.'),
  setting('validationTimeoutMs', 'integer', '30000', 'Time limit for opening an uploaded .onnx and running it once on zero inputs, or building an uploaded saved model\'s network, in a validation child process.', { minimum: 100 }),
  setting('validationMemoryBytes', 'integer', bytesText(2048 * mebibyte), 'Memory limit (RSS) of a validation child process (opening an .onnx and running it once, where its memory is measured; building a saved model\'s network). A version stored before measuring is opened under it at its first load: over it, the load answers 503.', { minimum: 64 * mebibyte }),
  setting('masterKey', 'secret', '(none)', 'Master key ring: base64 of 32 bytes, or "1:<base64>,2:<base64>" while rotating. Required unless insecureDev.'),
  setting('masterKeyFile', 'path', '(none)', 'File holding the master key ring instead of masterKey.'),
  setting('insecureDev', 'boolean', 'false', 'Development only: generate and keep a master key in <dataDir>/insecure-dev-master-key.'),
  setting('bootstrapKey', 'secret', '(generated)', 'First admin API key (32+ characters) created on an empty store; otherwise one is generated and printed once.'),
  setting('serverSecret', 'secret', '(generated)', 'HMAC secret for API key hashes (32+ characters); default: generated once into <dataDir>/server-secret.'),
  setting('tlsCert', 'path', '(none)', 'PEM certificate file; with tlsKey the server speaks HTTPS and sends HSTS.'),
  setting('tlsKey', 'path', '(none)', 'PEM private key file for tlsCert.'),
  setting('trustProxy', 'boolean', 'false', 'Take the client IP (audit log) from X-Forwarded-For; enable only behind your own proxy.'),
  setting('llmParallel', 'integer', '2', 'Sequences each loaded language model generates at once (continuous batching across them); each gets its own KV cache of llmContextLength tokens.', { minimum: 1, maximum: 64 }),
  setting('llmMaxWaiting', 'integer', '16', 'Generations per language model that may wait for a free sequence; one more gets 503 QUEUE_FULL.', { minimum: 0 }),
  setting('llmThreads', 'integer', '(half the cores, at least 1)', 'llama.cpp threads per loaded language model.', { minimum: 1, maximum: 256 }),
  setting('llmContextLength', 'integer', '4096', 'Context (tokens) each sequence of a language model gets; the model\'s trained context when smaller. Counted in the model\'s memory (KV cache).', { minimum: 64 }),
  setting('llmMaxContextLength', 'integer', '32768', 'Upper bound of any language model\'s context per sequence (and of Ollama\'s options.num_ctx).', { minimum: 64 }),
  setting('llmDefaultMaxTokens', 'integer', '256', 'Tokens generated when a request sets no max_tokens / num_predict.', { minimum: 1 }),
  setting('llmMaxTokens', 'integer', '4096', 'Most tokens one request may ask to generate; more is a 400.', { minimum: 1 }),
  setting('metricsPublic', 'boolean', 'false', 'Serve /metrics without an API key, every tenant\'s series included; otherwise it needs a key with metrics:read and shows a tenant only its own series.'),
  setting('backupDir', 'path', '(none)', 'Where the server writes backups (POST /api/v1/admin/backups and the schedule); outside dataDir, ideally on other storage.'),
  setting('backupIntervalSeconds', 'integer', '0', 'Take a backup into backupDir every this many seconds (0: no schedule).', { minimum: 0 }),
  setting('backupKeep', 'integer', '7', 'Server-made backups kept in backupDir; older ones are removed after each new one.', { minimum: 1 }),
  setting('pullAllowedHosts', 'string', '(any public host)', 'Comma-separated hosts model pulls may download from: names, IP literals or *.domain suffixes. Unset, any host whose addresses are all public. A listed host may resolve to private addresses.'),
  setting('pullAllowPrivate', 'boolean', 'false', 'Let model pulls reach private, loopback, link-local and other special addresses of hosts not in pullAllowedHosts. Checked on every resolved address and every redirect.'),
  setting('pullMaxRedirects', 'integer', '5', 'Redirects a model pull follows (each target checked again).', { minimum: 0, maximum: 20 }),
  setting('usageFlushIntervalMs', 'integer', '1000', 'How often the usage ledger writes the usage it buffers in memory (0: only on reads and at shutdown). A kill -9 loses at most the usage of one interval; a graceful stop loses none.', { minimum: 0, maximum: 3600000 }),
  setting('plans', 'path', '(none)', 'JSON file of billing plans ({"plans": [...]}, docs/billing.md) written to the database at start; these plans are read-only through /api/v1/plans. Operator-made plans live in the database.'),
  setting('webhookAllowedHosts', 'string', '(any public host)', 'Comma-separated hosts tenant webhooks may be sent to (names, IP literals or *.domain suffixes), with the model pulls\' rules. Unset, any host whose addresses are all public.'),
  setting('webhookAllowPrivate', 'boolean', 'false', 'Let webhooks reach private, loopback, link-local and other special addresses of hosts not in webhookAllowedHosts. Checked when set and at every delivery.'),
  setting('driftSampleRate', 'number', '0', 'Share of V2 and TF-Serving inference requests whose inputs and predicted classes are sampled for drift tracking (0 = off, costing nothing; 1 = every request).', { minimum: 0, maximum: 1 }),
  setting('driftWindowSize', 'integer', '1000', 'Sampled rows kept per model version (a rolling window) for drift scores.', { minimum: 10, maximum: 100000 }),
  setting('driftPsiThreshold', 'number', '0.25', 'A version whose worst input-feature PSI, or output-class PSI, exceeds this is drifting: an audit entry drift.detected is written (once per crossing).', { minimum: 0 }),
  setting('gateWaitSeconds', 'integer', '60', "How long moving a gated alias waits for the gate's evaluation before answering 202 with its job (a request's waitSeconds may ask for less or more, up to 600).", { minimum: 0, maximum: 600 }),
  setting('shadowMaxInFlight', 'integer', '64', "Shadow inferences running at once per server; a live request arriving above it gets no shadow copy (counted as skipped).", { minimum: 1, maximum: 100000 }),
  setting('logFormat', 'enum', 'auto', 'Log lines on stdout: json (pino, one object a line), pretty (time, level, message and fields, for people), or auto: pretty when stdout is a terminal, json otherwise.', { values: logFormats }),
  setting('pullConcurrency', 'integer', '2', 'Model downloads (pull jobs) run at once by this server; a pool of its own, so downloads never take jobConcurrency slots from training and evaluation, nor wait for them.', { minimum: 1, maximum: 64 }),
  setting('shutdownGraceMs', 'integer', '10000', 'At shutdown (SIGTERM, SIGINT), how long language-model generations still running may finish; then they are aborted, each open stream gets its last event (finish reason abort) and ends, so a client holding a streamed chat cannot hold the shutdown.', { minimum: 0, maximum: 600000 }),
];

const definitionsByName = new Map(settingDefinitions.map((definition) => [definition.name, definition]));
const definitionsByFlag = new Map(settingDefinitions.map((definition) => [definition.flag, definition]));

export type ConfigValue = string | number | boolean | undefined;

export interface LoadConfigOptions {
  /** Parsed command-line flags, keyed by flag (`data-dir`) or setting name (`dataDir`); `config` names the file. */
  flags?: Readonly<Record<string, ConfigValue>>;
  env?: Readonly<Record<string, string | undefined>>;
  /** JSON config file path; defaults to flags.config or AIAAS_CONFIG. */
  configFile?: string;
  /** Resolves relative paths; default process.cwd(). */
  cwd?: string;
}

function where(definition: SettingDefinition): string {
  return `--${definition.flag} / ${definition.env}`;
}

function invalid(definition: SettingDefinition, message: string): AiaasError {
  return new AiaasError('CONFIG_INVALID', `Setting ${definition.name} (${where(definition)}): ${message}`, {
    details: { setting: definition.name, flag: `--${definition.flag}`, env: definition.env },
  });
}

function coerce(definition: SettingDefinition, raw: unknown): string | number | boolean {
  switch (definition.type) {
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      const text = String(raw).trim().toLowerCase();
      if (['true', '1', 'yes', 'on', ''].includes(text)) return true;
      if (['false', '0', 'no', 'off'].includes(text)) return false;
      throw invalid(definition, `expected true or false, got ${JSON.stringify(raw)}`);
    }
    case 'integer':
    case 'number': {
      const value = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw.trim()) : Number.NaN;
      if (!Number.isFinite(value) || (definition.type === 'integer' && !Number.isSafeInteger(value))) {
        throw invalid(definition, `expected ${definition.type === 'integer' ? 'an integer' : 'a number'}, got ${JSON.stringify(raw)}`);
      }
      if (definition.minimum !== undefined && value < definition.minimum) throw invalid(definition, `must be at least ${definition.minimum}, got ${value}`);
      if (definition.maximum !== undefined && value > definition.maximum) throw invalid(definition, `must be at most ${definition.maximum}, got ${value}`);
      return value;
    }
    case 'enum': {
      const text = String(raw).trim();
      if (!definition.values!.includes(text)) throw invalid(definition, `expected one of ${definition.values!.join(', ')}, got ${JSON.stringify(raw)}`);
      return text;
    }
    default: {
      if (typeof raw !== 'string' && typeof raw !== 'number') throw invalid(definition, `expected a string, got ${JSON.stringify(raw)}`);
      const text = String(raw);
      if (text.trim() === '') throw invalid(definition, 'must not be empty');
      return text;
    }
  }
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new AiaasError('CONFIG_INVALID', `Cannot read the config file ${path} (--config / AIAAS_CONFIG)`, { cause: error });
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new AiaasError('CONFIG_INVALID', `The config file ${path} is not valid JSON: ${describeJsonSyntaxError(text, error)}`);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new AiaasError('CONFIG_INVALID', `The config file ${path} must hold a JSON object of settings`);
  }
  return document as Record<string, unknown>;
}

/** `a.example, *.b.example ,10.0.0.5` → lowercase entries; an entry with a scheme, path or port is a config error. */
function parseHostList(text: string | undefined, setting: SettingName = 'pullAllowedHosts'): string[] {
  if (text === undefined) return [];
  const hosts = text.split(',').map((entry) => entry.trim().toLowerCase()).filter((entry) => entry !== '');
  for (const host of hosts) {
    if (!/^(\*\.)?[a-z0-9.-]+$|^\[?[0-9a-f:.]+\]?$/.test(host)) {
      throw invalid(definitionsByName.get(setting)!, `"${host}" is not a host name, IP address or *.domain suffix (no scheme, port or path)`);
    }
  }
  return hosts.map((host) => host.replace(/^\[(.*)\]$/, '$1'));
}

/** Resolves every setting (flags > env > file > defaults) and validates the result. */
export function loadConfig(options: LoadConfigOptions = {}): AiaasConfig {
  const flags = options.flags ?? {};
  const env = options.env ?? {};
  const cwd = options.cwd ?? process.cwd();

  const flagValues = new Map<SettingName, unknown>();
  for (const [key, value] of Object.entries(flags)) {
    if (value === undefined || key === 'config') continue;
    const definition = definitionsByFlag.get(key) ?? definitionsByName.get(key as SettingName);
    if (definition === undefined) throw new AiaasError('CONFIG_INVALID', `Unknown flag --${key}`, { details: { flag: key } });
    flagValues.set(definition.name, value);
  }

  const configPath = options.configFile ?? (typeof flags.config === 'string' ? flags.config : undefined) ?? env.AIAAS_CONFIG;
  const fileValues = new Map<SettingName, unknown>();
  if (configPath !== undefined && configPath.trim() !== '') {
    const file = readConfigFile(resolve(cwd, configPath));
    for (const [key, value] of Object.entries(file)) {
      const definition = definitionsByName.get(key as SettingName);
      if (definition === undefined) {
        throw new AiaasError('CONFIG_INVALID', `Unknown setting "${key}" in the config file ${configPath}`, {
          details: { setting: key, known: settingDefinitions.map((item) => item.name) },
        });
      }
      if (value !== null) fileValues.set(definition.name, value);
    }
  }

  const resolved: Partial<Record<SettingName, string | number | boolean>> = {};
  for (const definition of settingDefinitions) {
    const envValue = env[definition.env];
    const raw = flagValues.has(definition.name)
      ? flagValues.get(definition.name)
      : envValue !== undefined && envValue !== ''
        ? envValue
        : fileValues.get(definition.name);
    if (raw === undefined) continue;
    resolved[definition.name] = coerce(definition, raw);
  }

  const value = <T extends string | number | boolean>(name: SettingName): T =>
    (resolved[name] ?? definitionsByName.get(name)!.defaultValue) as T;
  const optionalText = (name: SettingName): string | undefined => resolved[name] as string | undefined;
  const optionalPath = (name: SettingName): string | undefined => {
    const text = optionalText(name);
    return text === undefined ? undefined : resolve(cwd, text);
  };

  const dataDir = resolve(cwd, value<string>('dataDir'));
  const config: AiaasConfig = {
    host: value('host'),
    port: value('port'),
    dataDir,
    databasePath: optionalPath('databasePath') ?? join(dataDir, 'aiaas.db'),
    keyStorePath: optionalPath('keyStorePath') ?? join(dataDir, 'keystore.db'),
    logLevel: value<LogLevel>('logLevel'),
    bodyLimitBytes: value('bodyLimitBytes'),
    inferenceBodyLimitBytes: value('inferenceBodyLimitBytes'),
    maxDatasetBytes: value('maxDatasetBytes'),
    maxModelBytes: value('maxModelBytes'),
    maxModelParameters: value('maxModelParameters'),
    maxTensorElements: value('maxTensorElements'),
    rateLimitPerSecond: value('rateLimitPerSecond'),
    rateLimitBurst: value('rateLimitBurst'),
    jobConcurrency: value('jobConcurrency'),
    maxConcurrentJobsPerTenant: value('maxConcurrentJobsPerTenant'),
    jobLeaseMs: value('jobLeaseMs'),
    jobMemoryLimitBytes: value('jobMemoryLimitBytes'),
    modelMemoryBudgetBytes: value('modelMemoryBudgetBytes'),
    modelIdleUnloadMs: value('modelIdleUnloadMs'),
    inferenceThreads: value('inferenceThreads'),
    inferenceParseThreads: value('inferenceParseThreads'),
    inferenceInstances: value('inferenceInstances'),
    inferenceWorkerNice: value('inferenceWorkerNice'),
    batchMaxSize: value('batchMaxSize'),
    batchMaxQueueDelayMicroseconds: value('batchMaxQueueDelayMicroseconds'),
    batchMaxQueueSize: value('batchMaxQueueSize'),
    warmup: value('warmup'),
    validationTimeoutMs: value('validationTimeoutMs'),
    validationMemoryBytes: value('validationMemoryBytes'),
    masterKey: optionalText('masterKey'),
    masterKeyFile: optionalPath('masterKeyFile'),
    insecureDev: value('insecureDev'),
    bootstrapKey: optionalText('bootstrapKey'),
    serverSecret: optionalText('serverSecret'),
    tlsCert: optionalPath('tlsCert'),
    tlsKey: optionalPath('tlsKey'),
    trustProxy: value('trustProxy'),
    metricsPublic: value('metricsPublic'),
    llmParallel: value('llmParallel'),
    llmMaxWaiting: value('llmMaxWaiting'),
    // Half the cores: llama.cpp's threads spin while they wait, so using every core starves the event loop and other models.
    llmThreads: (resolved.llmThreads as number | undefined) ?? Math.max(1, Math.floor(availableParallelism() / 2)),
    llmContextLength: value('llmContextLength'),
    llmMaxContextLength: value('llmMaxContextLength'),
    llmDefaultMaxTokens: value('llmDefaultMaxTokens'),
    llmMaxTokens: value('llmMaxTokens'),
    backupDir: optionalPath('backupDir'),
    backupIntervalSeconds: value('backupIntervalSeconds'),
    backupKeep: value('backupKeep'),
    pullAllowedHosts: parseHostList(optionalText('pullAllowedHosts')),
    pullAllowPrivate: value('pullAllowPrivate'),
    pullMaxRedirects: value('pullMaxRedirects'),
    usageFlushIntervalMs: value('usageFlushIntervalMs'),
    plans: optionalPath('plans'),
    webhookAllowedHosts: parseHostList(optionalText('webhookAllowedHosts'), 'webhookAllowedHosts'),
    webhookAllowPrivate: value('webhookAllowPrivate'),
    driftSampleRate: value('driftSampleRate'),
    driftWindowSize: value('driftWindowSize'),
    driftPsiThreshold: value('driftPsiThreshold'),
    gateWaitSeconds: value('gateWaitSeconds'),
    shadowMaxInFlight: value('shadowMaxInFlight'),
    logFormat: value<LogFormat>('logFormat'),
    pullConcurrency: value('pullConcurrency'),
    shutdownGraceMs: value('shutdownGraceMs'),
  };
  validateConfig(config);
  return config;
}

/** Cross-field rules; also run by createServerContext so hand-built configs are checked too. */
export function validateConfig(config: AiaasConfig): void {
  const definition = (name: SettingName) => definitionsByName.get(name)!;
  if (config.bootstrapKey !== undefined && config.bootstrapKey.length < 32) {
    throw invalid(definition('bootstrapKey'), 'must be at least 32 characters long');
  }
  if (config.serverSecret !== undefined && config.serverSecret.length < 32) {
    throw invalid(definition('serverSecret'), 'must be at least 32 characters long');
  }
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
    throw invalid(definition(config.tlsCert === undefined ? 'tlsCert' : 'tlsKey'), 'TLS needs both tlsCert and tlsKey');
  }
  if (config.masterKey !== undefined && config.masterKeyFile !== undefined) {
    throw invalid(definition('masterKeyFile'), 'set either masterKey (AIAAS_MASTER_KEY) or masterKeyFile (AIAAS_MASTER_KEY_FILE), not both');
  }
  if (config.llmContextLength > config.llmMaxContextLength) {
    throw invalid(definition('llmContextLength'), `must not exceed llmMaxContextLength (${config.llmMaxContextLength})`);
  }
  if (config.llmDefaultMaxTokens > config.llmMaxTokens) {
    throw invalid(definition('llmDefaultMaxTokens'), `must not exceed llmMaxTokens (${config.llmMaxTokens})`);
  }
  if (config.backupIntervalSeconds > 0 && config.backupDir === undefined) {
    throw invalid(definition('backupIntervalSeconds'), 'a backup schedule needs backupDir (--backup-dir / AIAAS_BACKUP_DIR)');
  }
  if (config.backupDir !== undefined) {
    const inside = relative(config.dataDir, config.backupDir);
    // A backup inside the data directory is lost with it: it protects against nothing.
    const outside = inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside);
    if (!outside) throw invalid(definition('backupDir'), `must be outside dataDir (${config.dataDir})`);
  }
  if (config.inferenceBodyLimitBytes > config.bodyLimitBytes) {
    throw invalid(definition('inferenceBodyLimitBytes'), `must not exceed bodyLimitBytes (${config.bodyLimitBytes})`);
  }
}

const secretSettings: readonly SettingName[] = ['masterKey', 'bootstrapKey', 'serverSecret'];

/** The config with secrets replaced, safe to log. */
export function redactConfig(config: AiaasConfig): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...config };
  for (const name of secretSettings) if (copy[name] !== undefined) copy[name] = '[redacted]';
  return copy;
}

/** The Markdown table of docs/configuration.md, generated from the definitions. */
export function configurationTable(): string {
  const escape = (text: string) => text.replace(/\|/g, '\\|');
  const rows = settingDefinitions.map(
    (definition) =>
      `| \`${definition.name}\` | \`--${definition.flag}\` | \`${definition.env}\` | \`${escape(definition.defaultText)}\` | ${escape(definition.description)} |`,
  );
  return ['| setting (config file key) | flag | environment | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}
