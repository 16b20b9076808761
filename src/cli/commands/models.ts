import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { keyIdOf, publicKeyFrom, rawPublicKey, verifyRecord } from '../../security/provenance-signature.ts';
import { AiaasApiError } from '../../sdk/errors.ts';
import type { AiaasClient } from '../../sdk/client.ts';
import type { JsonValue } from '../../sdk/types.ts';
import { CliFailure, CliUsageError, integerOption, requiredOption, stringOption, type CommandDefinition } from '../command.ts';
import { renderEvaluationReport } from '../evaluation-tables.ts';
import type { EvaluationReport } from '../../quality/metrics.ts';
import { costCardLines } from '../cost-card.ts';
import { bytes, json, writeListing } from '../format.ts';
import type { CliIo } from '../io.ts';
import { parseModelReference } from './predict.ts';

function field(data: JsonValue, name: string): JsonValue | undefined {
  return typeof data === 'object' && data !== null && !Array.isArray(data) ? data[name] : undefined;
}

/**
 * Follows a pull job to its end: download progress on stderr (redrawn in place on a terminal, a
 * line per quarter otherwise), or every event as a JSON line with --json. Returns the new version.
 */
export async function watchPull(client: AiaasClient, io: CliIo, jobId: string, options: { json: boolean; signal: AbortSignal | undefined }): Promise<number> {
  const interactive = io.stderr.isTTY === true;
  let shownQuarter = -1;
  let redrawn = false;
  const line = (text: string) => io.stderr.write(interactive && redrawn ? `\r\u001b[2K${text}\n` : `${text}\n`);
  for await (const event of client.jobs.watch(jobId, { signal: options.signal })) {
    if (options.json) io.stdout.write(`${JSON.stringify(event)}\n`);
    const phase = field(event.data, 'phase');
    if (event.type === 'job-progress' && phase === 'downloading' && !options.json) {
      const done = Number(field(event.data, 'bytesDone') ?? 0);
      const total = field(event.data, 'bytesTotal');
      const text = typeof total === 'number' && total > 0 ? `${bytes(done)} / ${bytes(total)} (${Math.floor((100 * done) / total)} %)` : bytes(done);
      if (interactive) {
        io.stderr.write(`\r\u001b[2Kdownloading ${text}`);
        redrawn = true;
      } else {
        const quarter = typeof total === 'number' && total > 0 ? Math.floor((4 * done) / total) : shownQuarter + 1;
        if (quarter > shownQuarter) line(`downloading ${text}`);
        shownQuarter = quarter;
      }
    } else if (event.type === 'download-resumed' && !options.json) {
      line(`connection dropped; resuming at byte ${String(field(event.data, 'fromByte'))}`);
    } else if (event.type === 'job-progress' && phase === 'verifying' && !options.json) {
      line(`verifying sha256 ${String(field(event.data, 'sha256'))}`);
    } else if (event.type === 'job-finished') {
      const status = field(event.data, 'status');
      if (status === 'succeeded') return Number(field(event.data, 'version'));
      if (status === 'cancelled') throw new CliFailure('JOB_CANCELLED', `pull ${jobId} was cancelled`);
      const error = field(event.data, 'error');
      throw new CliFailure(String(field(error ?? null, 'code') ?? 'JOB_FAILED'), `pull ${jobId} failed: ${String(field(error ?? null, 'message') ?? 'no reason given')}`);
    }
  }
  const job = await client.jobs.get(jobId, { signal: options.signal });
  if (job.status === 'succeeded' && job.resultVersion !== null) return job.resultVersion.version;
  throw new CliFailure(job.error?.code ?? 'JOB_FAILED', `pull ${jobId} ended ${job.status}: ${job.error?.message ?? 'no reason given'}`);
}

/** sysexits' EX_TEMPFAIL: nothing changed yet, try again later (a gate's evaluations are still running). */
const evaluatingExitCode = 75;


export const modelCommands: readonly CommandDefinition[] = [
  {
    path: ['models', 'ls'],
    summary: 'list models with their versions and aliases',
    usage: '',
    server: true,
    json: true,
    async run(context) {
      const models = await context.client().models.list({ signal: context.signal });
      writeListing(context, 'models', models, ['NAME', 'VERSIONS', 'ALIASES', 'DESCRIPTION'], (model) => [
        model.name,
        (model.versions ?? []).join(',') || '-',
        (model.aliases ?? []).map((alias) => `${alias.name}→${alias.version}`).join(' ') || '-',
        model.description ?? '',
      ]);
      return 0;
    },
  },
  {
    path: ['models', 'push'],
    summary: 'add a version to a model from an .onnx file or a saved-model folder (creates the model if needed)',
    usage: 'NAME FILE_OR_DIR [--description TEXT] [--alias ALIAS]',
    description:
      'A folder (spec.json, model.safetensors, model.onnx, metrics.json, as `aiaas train --out` writes it) is packed\nas a .tar; a .tar file is sent as is; any other file is sent as .onnx. Prints the new version number.',
    positionals: ['NAME', 'FILE_OR_DIR'],
    options: {
      description: { type: 'string', valueName: 'TEXT', description: 'description, used only when the model is created' },
      alias: { type: 'string', valueName: 'ALIAS', description: 'then point this alias (e.g. production) at the new version' },
    },
    server: true,
    json: true,
    examples: ['aiaas models push mnist ./mnist-model --alias production', 'aiaas models push resnet resnet50.onnx'],
    async run(context) {
      const [name, source] = context.positionals as [string, string];
      const client = context.client();
      // Checked first so a mistyped path does not leave an empty model behind.
      const path = resolve(context.io.cwd, source);
      await stat(path);
      const description = stringOption(context.values, 'description');
      let created = false;
      try {
        await client.models.get(name, { signal: context.signal });
      } catch (error) {
        if (!(AiaasApiError.isInstance(error) && error.status === 404)) throw error;
        await client.models.create({ name, ...(description === undefined ? {} : { description }) }, { signal: context.signal });
        created = true;
      }
      let version: Awaited<ReturnType<typeof client.versions.upload>>;
      try {
        version = await client.versions.upload(name, { source: { path }, signal: context.signal });
      } catch (error) {
        // A refused file (INVALID_MODEL_FILE, …) must not leave behind the empty model this push made.
        if (created) await client.models.delete(name).catch(() => undefined);
        throw error;
      }
      if (created && !context.json) context.io.stderr.write(`created model ${name}\n`);
      const alias = stringOption(context.values, 'alias');
      if (alias !== undefined) await client.aliases.set(name, alias, version.version, { signal: context.signal });
      if (context.json) context.io.stdout.write(json(version));
      else {
        context.io.stdout.write(`${version.version}\n`);
        const signature = version.signature;
        const inputs = 'inputs' in signature ? signature.inputs.map((input) => `${input.name} ${input.datatype}[${input.shape.join(',')}]`).join(', ') : '';
        const described = 'architecture' in signature ? ` (gguf: ${signature.architecture}, ${signature.parameterCount} parameters, ${signature.quantization})` : inputs === '' ? '' : ` (inputs: ${inputs})`;
        context.io.stderr.write(`pushed ${name} version ${version.version}${described}${alias === undefined ? '' : `; ${alias} → ${version.version}`}\n`);
      }
      return 0;
    },
  },
  {
    path: ['models', 'pull'],
    summary: 'have the server download a model file from a URL as a new version (a background pull job)',
    usage: 'NAME URL [--sha256 HEX] [--watch]',
    description:
      'URL is https://… (or http://…) or hf://OWNER/REPO/FILE.gguf, shorthand for the file on Hugging Face\'s main branch.\n' +
      'The server checks the host against its pull policy, resumes dropped connections, verifies --sha256 and\n' +
      'registers the file like an upload (the model is created if needed). Prints the job id; with --watch, follows\n' +
      'the download and prints the new version number (exit 0 only if it succeeded).',
    positionals: ['NAME', 'URL'],
    options: {
      sha256: { type: 'string', valueName: 'HEX', description: 'expected sha256 of the file (64 hex digits); a mismatch fails the job' },
      watch: { type: 'boolean', description: 'follow the download until the version is registered' },
    },
    server: true,
    json: true,
    examples: ['aiaas models pull tinyllama hf://TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf --watch', 'aiaas models pull clf https://models.example.com/clf.onnx --sha256 9f86d0…'],
    async run(context) {
      const [name, url] = context.positionals as [string, string];
      const sha256 = stringOption(context.values, 'sha256');
      if (sha256 !== undefined && !/^(sha256:)?[0-9a-fA-F]{64}$/.test(sha256)) throw new CliUsageError('--sha256 must be 64 hex digits', 'models pull');
      const client = context.client();
      const job = await client.versions.pull(name, { url, ...(sha256 === undefined ? {} : { sha256 }), signal: context.signal });
      if (context.values.watch !== true) {
        context.io.stdout.write(context.json ? json(job) : `${job.id}\n`);
        return 0;
      }
      if (!context.json) context.io.stderr.write(`pull job ${job.id}\n`);
      const version = await watchPull(client, context.io, job.id, { json: context.json, signal: context.signal });
      if (!context.json) {
        context.io.stdout.write(`${version}\n`);
        context.io.stderr.write(`pulled ${name} version ${version}\n`);
      }
      return 0;
    },
  },
  {
    path: ['models', 'alias'],
    summary: 'point an alias (production, staging, …) at a version or a weighted split, with a shadow and a promotion gate; moves atomically',
    usage: 'NAME ALIAS [VERSION] [--split V=W,…] [--shadow V|none] [--gate-metric M --gate-dataset ID (--gate-min X | --gate-max X | --gate-max-drop D) | --no-gate] [--force] [--wait-seconds S]',
    description:
      'VERSION moves the alias to one version; --split 3=90,4=10 splits its traffic (sticky per x-aiaas-route-key).\n' +
      '--shadow V copies the traffic to V and compares its answers (see `aiaas models shadow`). A gate is checked for\n' +
      'every version the change adds, from stored evaluation reports or new evaluate jobs: a failing gate exits 1 with\n' +
      'GATE_FAILED and both figures; still evaluating after --wait-seconds, nothing changes and the jobs are printed\n' +
      '(run the same command again once they finish). --force (admin keys) moves past the gate; it is audited.',
    positionals: ['NAME', 'ALIAS', 'VERSION?'],
    options: {
      split: { type: 'string', valueName: 'V=W,…', description: 'versions and relative weights, e.g. 3=90,4=10' },
      shadow: { type: 'string', valueName: 'V', description: 'a version that gets a copy of the traffic; none removes it' },
      'gate-metric': { type: 'string', valueName: 'METRIC', description: 'accuracy, macroF1, rocAuc, rootMeanSquaredError, … (docs/quality.md)' },
      'gate-dataset': { type: 'string', valueName: 'ID', description: "the gate's evaluation dataset" },
      'gate-min': { type: 'string', valueName: 'X', description: 'the metric must be at least X' },
      'gate-max': { type: 'string', valueName: 'X', description: 'the metric must be at most X' },
      'gate-max-drop': { type: 'string', valueName: 'D', description: 'at most D worse than the version the alias serves now' },
      'no-gate': { type: 'boolean', description: 'remove the gate' },
      force: { type: 'boolean', description: 'admin: move past the gate (audited)' },
      'wait-seconds': { type: 'string', valueName: 'S', description: "how long to wait for the gate's evaluations (server default 60)" },
    },
    server: true,
    json: true,
    examples: [
      'aiaas models alias mnist production 3',
      'aiaas models alias mnist production --split 3=90,4=10',
      'aiaas models alias mnist production 4 --gate-metric accuracy --gate-dataset ds_3k9… --gate-max-drop 0.005',
      'aiaas models alias mnist production --shadow 5',
    ],
    async run(context) {
      const command = 'models alias';
      const [name, alias, versionText] = context.positionals as [string, string, string | undefined];
      const values = context.values;
      const body: Record<string, unknown> = {};
      const versionOf = (text: string, what: string) => {
        const version = Number(text);
        if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(version) || version < 1) throw new CliUsageError(`${what} must be a version number ≥ 1, got "${text}"`, command);
        return version;
      };
      const changes = ['split', 'shadow', 'gate-metric', 'no-gate', 'force'].some((option) => values[option] !== undefined);
      if (versionText === undefined && !changes) throw new CliUsageError('missing VERSION', command);
      if (versionText !== undefined) body.version = versionOf(versionText, 'VERSION');
      const split = stringOption(values, 'split');
      if (split !== undefined) {
        if (versionText !== undefined) throw new CliUsageError('give either VERSION or --split', command);
        body.split = Object.fromEntries(
          split.split(',').map((part) => {
            const [version, weight] = part.split('=');
            if (version === undefined || weight === undefined || !(Number(weight) > 0)) throw new CliUsageError(`--split takes VERSION=WEIGHT pairs, got "${part}"`, command);
            return [String(versionOf(version, '--split version')), Number(weight)];
          }),
        );
      }
      const shadow = stringOption(values, 'shadow');
      if (shadow !== undefined) body.shadow = shadow === 'none' ? null : versionOf(shadow, '--shadow');
      const metric = stringOption(values, 'gate-metric');
      if (values['no-gate'] === true) body.gate = null;
      else if (metric !== undefined) {
        const number = (option: string) => {
          const text = stringOption(values, option);
          if (text === undefined) return undefined;
          const value = Number(text);
          if (text.trim() === '' || !Number.isFinite(value)) throw new CliUsageError(`--${option} must be a number, got "${text}"`, command);
          return value;
        };
        const [minimum, maximum, maxDropFromCurrent] = [number('gate-min'), number('gate-max'), number('gate-max-drop')];
        body.gate = {
          metric,
          datasetId: requiredOption(values, 'gate-dataset', command),
          ...(minimum === undefined ? {} : { minimum }),
          ...(maximum === undefined ? {} : { maximum }),
          ...(maxDropFromCurrent === undefined ? {} : { maxDropFromCurrent }),
        };
      }
      if (values.force === true) body.force = true;
      const wait = integerOption(values, 'wait-seconds', command, 0);
      if (wait !== undefined) body.waitSeconds = wait;
      const result = await context.client().aliases.route(name, alias, { ...body, signal: context.signal });
      if (context.json) {
        context.io.stdout.write(json(result));
        return result.status === 'applied' ? 0 : evaluatingExitCode;
      }
      if (result.status === 'evaluating') {
        context.io.stderr.write(`${name}@${alias} unchanged: the gate's evaluations are still running (${result.jobs.map((job) => job.id).join(', ')}); run the same command again once they finish\n`);
        return evaluatingExitCode;
      }
      const target = result.alias.split === null ? `version ${result.alias.version}` : result.alias.split.map((entry) => `version ${entry.version} (${entry.weight})`).join(', ');
      const extras = [result.alias.shadow === null ? '' : `, shadow ${result.alias.shadow}`, result.gate?.forced === true ? ', gate forced' : ''];
      for (const decision of result.gate?.decisions ?? []) {
        context.io.stderr.write(`gate: version ${decision.candidate.version} ${decision.metric} ${decision.candidate.value}${decision.current === null ? '' : ` (version ${decision.current.version}: ${decision.current.value})`} passed\n`);
      }
      context.io.stderr.write(`${name}@${result.alias.name} → ${target}${extras.join('')}\n`);
      return 0;
    },
  },
  {
    path: ['models', 'shadow'],
    summary: "compare an alias's shadow version with its live answers: agreement rate and latency",
    usage: 'NAME ALIAS',
    positionals: ['NAME', 'ALIAS'],
    server: true,
    json: true,
    examples: ['aiaas models shadow mnist production'],
    async run(context) {
      const [name, alias] = context.positionals as [string, string];
      const status = await context.client().aliases.shadow(name, alias, { signal: context.signal });
      if (context.json) {
        context.io.stdout.write(json(status));
        return 0;
      }
      const milliseconds = (value: number | null) => (value === null ? '-' : value.toFixed(2));
      writeListing(context, 'comparisons', status.comparisons, ['LIVE', 'SHADOW', 'REQUESTS', 'ROWS', 'AGREEMENT', 'ERRORS', 'SKIPPED', 'LIVE P50 MS', 'SHADOW P50 MS'], (entry) => [
        entry.liveVersion,
        entry.shadowVersion,
        String(entry.requests),
        String(entry.rows),
        entry.agreementRate === null ? '-' : entry.agreementRate.toFixed(4),
        String(entry.shadowErrors),
        String(entry.skipped),
        milliseconds(entry.liveLatencyMs.p50),
        milliseconds(entry.shadowLatencyMs.p50),
      ]);
      return 0;
    },
  },
  {
    path: ['models', 'rm'],
    summary: 'delete a model and its versions (refused while aliases point at it)',
    usage: 'NAME',
    positionals: ['NAME'],
    server: true,
    async run(context) {
      const name = context.positionals[0] as string;
      await context.client().models.delete(name, { signal: context.signal });
      context.io.stderr.write(`deleted model ${name}\n`);
      return 0;
    },
  },
  {
    path: ['models', 'evaluate'],
    summary: 'evaluate a version on a labelled dataset: accuracy, per-class table, confusion matrix, calibration (or regression errors)',
    usage: 'NAME@VERSION --dataset ID [--output NAME] [--label COLUMN] [--class-names A,B,…] [--top-k K] [--wait]',
    description:
      'Runs as a background job on the server (the model runs in a child process, never on the serving path).\n' +
      'VERSION is a number or an alias. Prints the evaluation id; with --wait, waits for the job and prints the\n' +
      'report as tables (--json: the report as JSON). --output names the output holding the scores (default: the\n' +
      "first); --class-names labels the classes in index order (default: the dataset's class names, else 0, 1, …).",
    positionals: ['NAME@VERSION'],
    options: {
      dataset: { type: 'string', valueName: 'ID', description: 'the labelled dataset to evaluate on' },
      output: { type: 'string', valueName: 'NAME', description: 'the model output holding the scores' },
      label: { type: 'string', valueName: 'COLUMN', description: 'label column of a CSV / JSON-lines dataset' },
      'class-names': { type: 'string', valueName: 'A,B,…', description: 'class names in class-index order, comma-separated' },
      'top-k': { type: 'string', valueName: 'K', description: 'k of the top-k accuracy (default min(5, classes))' },
      wait: { type: 'boolean', description: 'wait for the report and print it' },
    },
    server: true,
    json: true,
    examples: ['aiaas models evaluate fashion@1 --dataset ds_3k9… --wait', 'aiaas models evaluate clf@production --dataset ds_3k9… --output probabilities --class-names cat,dog --wait'],
    async run(context) {
      const target = context.positionals[0] as string;
      const match = /^([^@]+)@([^@]+)$/.exec(target);
      if (match === null) throw new CliUsageError(`expected NAME@VERSION (a number or an alias), got "${target}"`, 'models evaluate');
      const [, name, version] = match as unknown as [string, string, string];
      const datasetId = requiredOption(context.values, 'dataset', 'models evaluate');
      const output = stringOption(context.values, 'output');
      const label = stringOption(context.values, 'label');
      const classNames = stringOption(context.values, 'class-names')?.split(',');
      const topK = integerOption(context.values, 'top-k', 'models evaluate', 1);
      const client = context.client();
      const evaluation = await client.evaluations.create(name, version, {
        datasetId,
        ...(output === undefined ? {} : { outputs: output }),
        ...(label === undefined ? {} : { label }),
        ...(classNames === undefined ? {} : { classNames }),
        ...(topK === undefined ? {} : { topK }),
        signal: context.signal,
      });
      if (context.values.wait !== true) {
        context.io.stdout.write(context.json ? json(evaluation) : `${evaluation.id}\n`);
        return 0;
      }
      if (!context.json) context.io.stderr.write(`evaluation ${evaluation.id} of ${name} version ${evaluation.version} on ${datasetId}\n`);
      for await (const event of client.jobs.watch(evaluation.jobId, { signal: context.signal })) {
        if (event.type === 'job-finished') break;
      }
      const done = await client.evaluations.get(name, evaluation.version, evaluation.id, { signal: context.signal });
      if (done.status !== 'succeeded' || done.report === null) {
        const error = done.error as { code?: string; message?: string } | null;
        throw new CliFailure(error?.code ?? 'JOB_FAILED', `evaluation ${done.id} ${done.status}: ${error?.message ?? 'no reason given'}`);
      }
      context.io.stdout.write(context.json ? json(done.report) : renderEvaluationReport(done.report as EvaluationReport));
      return 0;
    },
  },
  {
    path: ['models', 'verify'],
    summary: "check a version's signed provenance record and, offline, the hashes of model files you hold",
    usage: 'NAME@VERSION [--file PATH] [--public-key PEM_FILE]',
    description:
      'Fetches the record and the server\'s public signing key, then verifies locally: the Ed25519 signature over the\n' +
      "record's canonical JSON, and with --file the file's SHA-256 against the record's entry of the same name\n" +
      '(model.onnx, model.safetensors, …). --public-key verifies against a key you saved earlier instead of the one\n' +
      'the server publishes now. Exit 0 only when everything checks; VERSION may be an alias or "latest".',
    positionals: ['NAME@VERSION'],
    options: {
      file: { type: 'string', valueName: 'PATH', description: 'a model file whose SHA-256 must match the record' },
      'public-key': { type: 'string', valueName: 'PEM_FILE', description: 'verify with this public key (PEM or raw base64)' },
    },
    server: true,
    json: true,
    examples: ['aiaas models verify mnist@3 --file ./model.onnx', 'aiaas models verify mnist@production --public-key aiaas-signing.pem'],
    async run(context) {
      const reference = context.positionals[0] as string;
      const at = reference.lastIndexOf('@');
      if (at <= 0 || at === reference.length - 1) throw new CliUsageError(`expected NAME@VERSION, got "${reference}"`, 'models verify');
      const [name, version] = [reference.slice(0, at), reference.slice(at + 1)];
      const client = context.client();
      const provenance = await client.versions.provenance(name, version, { signal: context.signal });
      const keyFile = stringOption(context.values, 'public-key');
      const keyText = keyFile === undefined ? (await client.signingKey({ signal: context.signal })).publicKeyPem : await readFile(resolve(context.io.cwd, keyFile), 'utf8');
      const publicKey = publicKeyFrom(keyText);
      const keyId = keyIdOf(rawPublicKey(publicKey));
      const record = provenance.record as { signingKey?: { keyId?: string }; files?: { name: string; sha256: string }[]; model?: string; version?: number };
      const signatureValid = record.signingKey?.keyId === keyId && verifyRecord(record, provenance.signature, publicKey);
      const report: { model: string; version: number | undefined; keyId: string; signature: 'valid' | 'invalid'; files: { path: string; name: string; sha256: string; expected: string | null; matches: boolean }[] } = {
        model: name,
        version: record.version,
        keyId,
        signature: signatureValid ? 'valid' : 'invalid',
        files: [],
      };
      const filePath = stringOption(context.values, 'file');
      if (filePath !== undefined) {
        const path = resolve(context.io.cwd, filePath);
        const sha256 = createHash('sha256');
        for await (const chunk of createReadStream(path)) sha256.update(chunk as Buffer);
        const digest = sha256.digest('hex');
        const fileName = basename(path);
        const entry = record.files?.find((file) => file.name === fileName) ?? (record.files?.length === 1 ? record.files[0] : undefined);
        report.files.push({ path: filePath, name: entry?.name ?? fileName, sha256: digest, expected: entry?.sha256 ?? null, matches: entry?.sha256 === digest });
      }
      if (context.json) context.io.stdout.write(json(report));
      else {
        context.io.stdout.write(`signature: ${report.signature} (Ed25519 key ${keyId}${record.signingKey?.keyId === keyId ? '' : `; the record names key ${String(record.signingKey?.keyId)}`})\n`);
        for (const file of report.files) {
          context.io.stdout.write(`${file.path}: sha256 ${file.sha256} ${file.expected === null ? 'is not in the record' : file.matches ? `matches ${file.name}` : `does NOT match ${file.name} (${file.expected})`}\n`);
        }
      }
      if (!signatureValid) throw new CliFailure('SIGNATURE_INVALID', `the provenance record of ${name}@${version} does not verify against key ${keyId}`);
      const mismatch = report.files.find((file) => !file.matches);
      if (mismatch !== undefined) throw new CliFailure('HASH_MISMATCH', `${mismatch.path} is not the file the record of ${name}@${version} names`);
      return 0;
    },
  },
  {
    path: ['models', 'quantize'],
    summary: 'make an int8 version of a version (dynamic-int8 quantization job) and report size, latency and accuracy',
    usage: 'NAME@VERSION [--evaluation-dataset ID] [--calibration-dataset ID] [--watch]',
    description:
      'Weights of MatMul, Gemm and Conv become int8 per output channel; activations are quantized at run time\n' +
      '(DynamicQuantizeLinear + MatMulInteger/ConvInteger), so any ONNX runtime runs the result. The new version\n' +
      'keeps the report: size ratio, measured latency ratio, accuracy delta on --evaluation-dataset, largest output\n' +
      'difference on a sample, and the nodes left in float32. Prints the job id; with --watch, the report.',
    positionals: ['NAME@VERSION'],
    options: {
      'evaluation-dataset': { type: 'string', valueName: 'ID', description: 'labelled dataset: top-1 accuracy of both versions is measured on it' },
      'calibration-dataset': { type: 'string', valueName: 'ID', description: 'dataset whose items are the sample for the output difference and latency' },
      watch: { type: 'boolean', description: 'wait for the job and print the new version\'s report' },
    },
    server: true,
    json: true,
    examples: ['aiaas models quantize fashion@1 --evaluation-dataset ds_… --watch'],
    async run(context) {
      const reference = parseModelReference(context.positionals[0] as string);
      const selector = reference.version ?? reference.alias ?? 'latest';
      const evaluationDatasetId = stringOption(context.values, 'evaluation-dataset');
      const calibrationDatasetId = stringOption(context.values, 'calibration-dataset');
      const client = context.client();
      const job = await client.versions.quantize(reference.name, selector, {
        mode: 'dynamic-int8',
        ...(evaluationDatasetId === undefined ? {} : { evaluationDatasetId }),
        ...(calibrationDatasetId === undefined ? {} : { calibrationDatasetId }),
        signal: context.signal,
      });
      if (context.values.watch !== true) {
        context.io.stdout.write(context.json ? json(job) : `${job.id}\n`);
        return 0;
      }
      if (!context.json) context.io.stderr.write(`quantize job ${job.id}\n`);
      for await (const event of client.jobs.watch(job.id, { signal: context.signal })) {
        if (context.json) continue;
        const phase = field(event.data, 'phase');
        if (event.type === 'job-progress' && typeof phase === 'string') context.io.stderr.write(`${phase}\n`);
      }
      const finished = await client.jobs.get(job.id, { signal: context.signal });
      if (finished.status !== 'succeeded' || finished.resultVersion === null) {
        throw new CliFailure(finished.error?.code ?? 'JOB_FAILED', `quantize job ${job.id} ended ${finished.status}: ${finished.error?.message ?? 'no reason given'}`);
      }
      const report = await client.versions.quantization(reference.name, finished.resultVersion.version, { signal: context.signal });
      if (context.json) {
        context.io.stdout.write(json({ version: finished.resultVersion.version, report }));
        return 0;
      }
      const accuracy = report.accuracy === null ? 'not measured (no --evaluation-dataset)' : `${(report.accuracy.float * 100).toFixed(2)} % → ${(report.accuracy.quantized * 100).toFixed(2)} % (${report.accuracy.deltaPercentagePoints >= 0 ? '+' : ''}${report.accuracy.deltaPercentagePoints.toFixed(2)} pp)`;
      context.io.stdout.write(
        [
          `version        ${finished.resultVersion.version} (from ${report.sourceVersion})`,
          `size           ${bytes(report.floatBytes)} → ${bytes(report.quantizedBytes)} (${report.sizeRatio}×)`,
          ...report.latency.map((entry) => `latency b=${String(entry.batch).padEnd(4)} ${entry.floatMilliseconds} ms → ${entry.quantizedMilliseconds} ms (${entry.ratio}×)`),
          `accuracy       ${accuracy}`,
          `max |Δoutput|  ${report.maxAbsoluteOutputDifference} over ${report.sampleItems} ${report.sampleSource} items`,
          `quantized      ${report.quantizedNodeCount} nodes; left float32: ${report.floatNodeCount === 0 ? 'none' : `${report.floatNodeCount}: ${report.floatNodes.map((node) => `${node.node} (${node.opType}: ${node.reason})`).join('; ')}`}`,
        ].join('\n') + '\n',
      );
      return 0;
    },
  },
  {
    path: ['models', 'cost'],
    summary: "show a version's cost card: parameters, size, FLOPs per item, measured latency and throughput (GGUF: tokens/s, KV cache), memory",
    usage: 'NAME@VERSION [--calibrate]',
    description: 'FLOPs count a multiply-accumulate as 2 (docs/models.md). --calibrate first runs a short calibration on the server\n(through the model\'s workers) and stores its latency and throughput with the version.',
    positionals: ['NAME@VERSION'],
    options: { calibrate: { type: 'boolean', description: 'measure latency and items/s on the server now' } },
    server: true,
    json: true,
    examples: ['aiaas models cost fashion@2 --calibrate'],
    async run(context) {
      const reference = parseModelReference(context.positionals[0] as string);
      const selector = reference.version ?? reference.alias ?? 'latest';
      const card = await context.client().versions.cost(reference.name, selector, { calibrate: context.values.calibrate === true, signal: context.signal });
      if (context.json) {
        context.io.stdout.write(json(card));
        return 0;
      }
      context.io.stdout.write(`${costCardLines(card).join('\n')}\n`);
      return 0;
    },
  },
];
