/**
 * The HTTP fuzzer: derives requests from `/openapi.json` (routes, path parameters, and request
 * schemas where the document declares them; a route-shape template where a schema is `{}`),
 * mutates them, and sends them with `app.inject()` to an in-process server holding two tenants
 * with a key of every role plus a protected tenant whose data is snapshotted. Pass condition: no
 * 500, every error in its surface's documented shape with a catalogued code, no error body that
 * echoes unbounded input, the server keeps answering, and the snapshot does not change.
 */
import { createHash } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { errorCatalogue, type ErrorCode } from '../../src/errors.ts';
import { call, classifierModel, createKey, createTenant, irisLikeCsv, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';
import { mutateBytes, mutateJson, Random, randomString } from './random.ts';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
type JsonSchema = Record<string, unknown>;

interface Operation {
  method: Method;
  /** OpenAPI template, `/api/v1/models/{name}`. */
  path: string;
  parameters: string[];
  contentTypes: string[];
  schema: JsonSchema | undefined;
  weight: number;
}

interface FuzzKey {
  label: string;
  key: string;
  /** The operator admin may delete anything (tenants included): it only reads and creates tenants. */
  readOnly: boolean;
  /** How to mint a replacement when a fuzzed request revoked this key. */
  remint?: () => Promise<string>;
}

export interface HttpFuzzFailure {
  request: string;
  status: number;
  problem: string;
  /** The request itself, for the corpus (absent for end-of-run checks). */
  sent?: FuzzRequest;
}

export interface HttpFuzzWorld {
  server: TestServer;
  operations: Operation[];
  keys: FuzzKey[];
  pools: Record<string, string[]>;
  /** Path values that exist in tenant A. */
  coherentPools: Record<string, string[]>;
  inputName: string;
  /** Puts tenant A's model and dataset back when fuzzed requests deleted them, so later cases reach deep code. */
  replenish(): Promise<void>;
  seedFiles: Uint8Array[];
  snapshot: string;
}

const errorBodyLimit = 8192;

/** The documented surfaces: V2 and TF-Serving answer `{"error": "…"}` + header, the rest the platform shape. */
function isInferenceUrl(url: string): boolean {
  const path = url.split('?', 1)[0]!;
  const ollama = ['/api/generate', '/api/chat', '/api/embed', '/api/tags', '/api/show', '/api/ps', '/api/version', '/api/pull', '/api/delete'].includes(path);
  return path === '/v2' || path.startsWith('/v2/') || path.startsWith('/tfserving/') || ollama;
}

/** OpenAI's routes answer `{"error": {message, type, param, code}}`, the catalogue code in the header. */
function isOpenAiUrl(url: string): boolean {
  const path = url.split('?', 1)[0]!;
  return path === '/v1' || path.startsWith('/v1/');
}
const catalogue = errorCatalogue as Record<string, { status: number }>;

async function expectStatus(response: LightMyRequestResponse, status: number, what: string): Promise<LightMyRequestResponse> {
  if (response.statusCode !== status) throw new Error(`${what}: ${response.statusCode} ${response.body.slice(0, 300)}`);
  return response;
}

/** What must not change: the protected tenant's model, its prediction, its dataset, its keys. */
const snapshotParts = ['model', 'versions', 'dataset', 'keys', 'model.onnx', 'prediction'];

async function takeSnapshot(server: TestServer, protectedAdmin: string, inputName: string, datasetId: string): Promise<string> {
  const reads = await Promise.all([
    call(server.app, protectedAdmin, 'GET', '/api/v1/models/keep'),
    call(server.app, protectedAdmin, 'GET', '/api/v1/models/keep/versions'),
    call(server.app, protectedAdmin, 'GET', `/api/v1/datasets/${datasetId}`),
    call(server.app, protectedAdmin, 'GET', '/api/v1/keys'),
    call(server.app, protectedAdmin, 'GET', '/api/v1/models/keep/versions/1/files/model.onnx'),
    call(server.app, protectedAdmin, 'POST', '/v2/models/keep/infer', {
      inputs: [{ name: inputName, datatype: 'FP32', shape: [2, 4], data: [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]] }],
    }),
  ]);
  const parts = reads.map((response, index) => {
    if (response.statusCode !== 200) return `status ${response.statusCode}: ${response.body.slice(0, 200)}`;
    // Using a key stamps its lastUsedAt, which the fuzzer does with the protected tenant's read-only keys.
    const bytes = snapshotParts[index] === 'keys' ? response.body.replace(/"lastUsedAt":("[^"]*"|null)/g, '') : response.rawPayload;
    return createHash('sha256').update(bytes).digest('hex');
  });
  return parts.join('\n');
}

export async function createHttpFuzzWorld(): Promise<HttpFuzzWorld> {
  const server = await startTestServer({
    rateLimitPerSecond: 1_000_000,
    rateLimitBurst: 1_000_000,
    bodyLimitBytes: 4 * 1024 * 1024,
    inferenceBodyLimitBytes: 4 * 1024 * 1024,
    maxConcurrentJobsPerTenant: 2,
    validationTimeoutMs: 20_000,
  });
  const protectedTenant = await createTenant(server, 'protected');
  const tenantA = await createTenant(server, 'tenant-a');
  const tenantB = await createTenant(server, 'tenant-b');
  const onnx = classifierModel(3).exportOnnx();
  const uploaded = await expectStatus(await uploadOnnxModel(server, protectedTenant.adminKey, 'keep', onnx), 201, 'upload keep');
  const inputName = uploaded.json().version.signature.inputs[0].name as string;
  await expectStatus(await uploadOnnxModel(server, tenantA.adminKey, 'clf-a', onnx), 201, 'upload clf-a');
  await expectStatus(await uploadOnnxModel(server, tenantB.adminKey, 'clf-b', classifierModel(5).exportOnnx()), 201, 'upload clf-b');
  const csv = irisLikeCsv();
  const datasetOf = async (adminKey: string, name: string): Promise<string> => {
    const response = await expectStatus(
      await call(server.app, adminKey, 'POST', `/api/v1/datasets?name=${name}&format=csv`, csv, { 'content-type': 'text/csv' }),
      201,
      `dataset ${name}`,
    );
    const body = response.json() as { id?: string; dataset?: { id: string } };
    return body.dataset?.id ?? body.id!;
  };
  const protectedDataset = await datasetOf(protectedTenant.adminKey, 'keep-data');
  const datasetA = await datasetOf(tenantA.adminKey, 'data-a');

  const keys: FuzzKey[] = [{ label: 'operator-admin', key: server.adminKey, readOnly: true }];
  const keyIds: string[] = [];
  for (const [label, tenant] of [['a', tenantA], ['b', tenantB]] as const) {
    keys.push({ label: `${label}-admin`, key: tenant.adminKey, readOnly: false });
    for (const role of ['developer', 'viewer', 'inference']) {
      const created = await createKey(server, tenant.adminKey, role);
      keys.push({ label: `${label}-${role}`, key: created.key, readOnly: false, remint: async () => (await createKey(server, tenant.adminKey, role)).key });
      keyIds.push(created.id);
    }
    const restricted = await createKey(server, tenant.adminKey, 'developer', { allowedModels: [`clf-${label}`] });
    keys.push({
      label: `${label}-restricted`,
      key: restricted.key,
      readOnly: false,
      remint: async () => (await createKey(server, tenant.adminKey, 'developer', { allowedModels: [`clf-${label}`] })).key,
    });
  }
  // The protected tenant's read-only roles are fuzzed too; its admin and developer keys are not.
  for (const role of ['viewer', 'inference']) {
    const created = await createKey(server, protectedTenant.adminKey, role);
    keys.push({ label: `protected-${role}`, key: created.key, readOnly: false });
  }
  const protectedKeys = (await call(server.app, protectedTenant.adminKey, 'GET', '/api/v1/keys')).json() as { keys?: { id: string }[] } | { id: string }[];
  const protectedKeyIds = (Array.isArray(protectedKeys) ? protectedKeys : (protectedKeys.keys ?? [])).map((key) => key.id);

  const document = (await call(server.app, undefined, 'GET', '/openapi.json')).json() as {
    paths: Record<string, Record<string, { parameters?: { name: string }[]; requestBody?: { content: Record<string, { schema?: JsonSchema }> } }>>;
  };
  const operations: Operation[] = [];
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const content = operation.requestBody?.content ?? {};
      const contentTypes = Object.keys(content);
      const schema = contentTypes.map((type) => content[type]?.schema).find((candidate) => candidate !== undefined && Object.keys(candidate).length > 0);
      // Uploads of model versions spawn a validation child per request: sent, but rarely.
      const weight = path.endsWith('/versions') && method === 'post' ? 0.15 : path === '/api/v1/jobs' && method === 'post' ? 0.5 : 1;
      operations.push({
        method: method.toUpperCase() as Method,
        path,
        parameters: (operation.parameters ?? []).map((parameter) => parameter.name),
        contentTypes,
        schema,
        weight,
      });
    }
  }
  const pools: Record<string, string[]> = {
    name: ['keep', 'clf-a', 'clf-b', 'missing', 'a.b_c-d'],
    id: [protectedDataset, datasetA, tenantA.id, tenantB.id, protectedTenant.id, ...keyIds, ...protectedKeyIds, '00000000-0000-0000-0000-000000000000', '1'],
    version: ['1', '2', 'latest', 'prod', '0', '-1', '99999999999999999999', '1.5'],
    selector: ['1', 'latest', 'prod', '0'],
    alias: ['prod', 'latest', 'stable', '1'],
    file: ['model.onnx', 'spec.json', 'metrics.json', 'model.safetensors', '..%2F..%2Fetc%2Fpasswd', '.'],
    segment: ['keep:predict', 'clf-a:predict', 'clf-b:predict', 'clf-a:classify', 'clf-a', ':predict'],
  };
  const coherentIds = [datasetA, ...keyIds.slice(0, 4)];
  const replenish = async (): Promise<void> => {
    const model = await call(server.app, tenantA.adminKey, 'GET', '/api/v1/models/clf-a/versions/1');
    if (model.statusCode === 404) await expectStatus(await uploadOnnxModel(server, tenantA.adminKey, 'clf-a', onnx), 201, 're-upload clf-a');
    const dataset = await call(server.app, tenantA.adminKey, 'GET', `/api/v1/datasets/${coherentIds[0]}`);
    if (dataset.statusCode === 404) coherentIds[0] = await datasetOf(tenantA.adminKey, `data-a-${Date.now()}`);
    for (const key of keys) {
      if (key.remint === undefined) continue;
      if ((await call(server.app, key.key, 'GET', '/api/v1/me')).statusCode === 401) key.key = await key.remint();
    }
  };
  const coherentPools: Record<string, string[]> = {
    name: ['clf-a'],
    id: coherentIds,
    version: ['1', 'latest'],
    selector: ['1', 'latest'],
    alias: ['prod', 'stable'],
    file: ['model.onnx', 'spec.json', 'metrics.json'],
    segment: ['clf-a:predict'],
  };
  return {
    server,
    operations,
    keys,
    pools,
    coherentPools,
    inputName,
    replenish,
    seedFiles: [new TextEncoder().encode(csv), onnx],
    snapshot: await takeSnapshot(server, protectedTenant.adminKey, inputName, protectedDataset),
    // kept for the final comparison
    ...{ protectedAdmin: protectedTenant.adminKey, protectedDataset },
  } as HttpFuzzWorld;
}

function pickOperation(random: Random, operations: readonly Operation[]): Operation {
  const total = operations.reduce((sum, operation) => sum + operation.weight, 0);
  let point = random.next() * total;
  for (const operation of operations) {
    point -= operation.weight;
    if (point <= 0) return operation;
  }
  return operations[operations.length - 1]!;
}


function pathValue(random: Random, world: HttpFuzzWorld, parameter: string, coherent: boolean): string {
  const roll = random.int(coherent ? 60 : 20);
  if (coherent && roll >= 4) return random.pick(world.coherentPools[parameter] ?? world.coherentPools.name!);
  if (roll === 0) return random.pick(['%zz', '%', 'a%E0%A4', '%C0%AF', '%00']);
  if (roll === 1) return 'x'.repeat(random.pick([257, 300, 5000]));
  if (roll === 2) return encodeURIComponent(randomString(random, 1 + random.int(20)));
  if (roll === 3) return random.pick(['..', '.', '%2e%2e', '~', ' ', '%20']);
  return random.pick(world.pools[parameter] ?? world.pools.name!);
}

/** A body for routes whose schema the document leaves `{}`: the shape the route's handler reads. */
function templateBody(random: Random, world: HttpFuzzWorld, operation: Operation): unknown {
  const { path, method } = operation;
  const rows = (count: number): number[][] => Array.from({ length: count }, () => [5.1, 3.5, 1.4, 0.2].map((value) => value + random.int(10) / 10));
  if (path === '/api/v1/tenants') return { name: `t-${random.int(1e6)}` };
  if (path === '/api/v1/keys') return { name: `k-${random.int(1e6)}`, role: random.pick(['admin', 'developer', 'viewer', 'inference']), allowedModels: ['clf-a'], expiresAt: '2999-01-01T00:00:00Z' };
  if (path === '/api/v1/models') return { name: `m-${random.int(1e6)}`, description: 'fuzz', batching: { maxBatchSize: 4, maxQueueDelayMicroseconds: 0 } };
  if (path === '/api/v1/models/{name}' && method === 'PATCH') return { description: 'patched', batching: { maxBatchSize: 2 } };
  if (path.includes('/aliases/')) return { version: random.pick([1, 2, '1', 'latest']) };
  if (path === '/api/v1/jobs') {
    return {
      model: random.pick(['clf-a', 'clf-b', 'new-model']),
      datasetId: random.pick(world.pools.id!),
      spec: { name: 'fuzz', input: { shape: [4] }, layers: [{ type: 'dense', units: 3, activation: 'softmax' }], compile: { optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy' } },
      epochs: 1,
      maxSteps: 1,
      batchSize: 4,
    };
  }
  if (path.startsWith('/v2/') && path.endsWith('/infer')) {
    const count = 1 + random.int(3);
    return { id: 'fuzz', inputs: [{ name: world.inputName, datatype: 'FP32', shape: [count, 4], data: rows(count) }], outputs: [] };
  }
  if (path.startsWith('/tfserving/')) return random.chance(0.5) ? { instances: rows(2) } : { inputs: { [world.inputName]: rows(1) } };
  return {};
}

/** A value for a JSON schema (the subset route schemas use), valid unless mutated afterwards. */
function fromSchema(random: Random, schema: JsonSchema, depth = 0): unknown {
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return random.pick(schema.enum as unknown[]);
  if ('const' in schema) return schema.const;
  const variants = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(variants) && variants.length > 0) return fromSchema(random, random.pick(variants), depth + 1);
  const type = Array.isArray(schema.type) ? random.pick(schema.type as string[]) : (schema.type as string | undefined);
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
      const required = new Set((schema.required ?? []) as string[]);
      for (const [key, child] of Object.entries(properties)) {
        if (depth < 6 && (required.has(key) || random.chance(0.6))) out[key] = fromSchema(random, child, depth + 1);
      }
      return out;
    }
    case 'array': {
      const count = Math.max(Number(schema.minItems ?? 0), Math.min(Number(schema.maxItems ?? 3), random.int(4)));
      return depth < 6 ? Array.from({ length: count }, () => fromSchema(random, (schema.items ?? {}) as JsonSchema, depth + 1)) : [];
    }
    case 'integer': {
      const minimum = Number(schema.minimum ?? 0);
      const maximum = Number(schema.maximum ?? minimum + 100);
      return minimum + random.int(Math.max(1, Math.min(maximum - minimum + 1, 1000)));
    }
    case 'number':
      return Number(schema.minimum ?? 0) + random.next();
    case 'boolean':
      return random.chance(0.5);
    case 'string': {
      const minimum = Number(schema.minLength ?? 1);
      return `s${'a'.repeat(Math.max(0, Math.min(minimum, 20) - 1))}${random.int(1e6)}`;
    }
    case 'null':
      return null;
    default:
      return {};
  }
}

export interface FuzzRequest {
  method: Method;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
}

function buildRequest(random: Random, world: HttpFuzzWorld): FuzzRequest {
  const operation = pickOperation(random, world.operations);
  // Coherent requests use tenant A's own key and resources, so they get past 401/403/404 into the handlers.
  const coherent = random.chance(0.5);
  let url = operation.path.replace(/\{([A-Za-z0-9_]+)\}/g, (_, parameter: string) => pathValue(random, world, parameter, coherent));
  if (random.chance(0.2)) {
    const query = random.pick([
      'limit=-1', 'limit=1e99', 'offset=abc', 'after=%zz', 'name=x&name=y', `name=${'n'.repeat(5000)}`, 'format=zip', 'status=weird', 'limit=5&offset=1',
      'api_key=aiaas_garbage', 'from=2026-13-45&to=x', 'name=fuzz-data&format=csv', 'name=fuzz-json&format=jsonl&label=label',
    ]);
    url += `?${query}`;
  }
  const fuzzKeys = operation.method === 'GET' || operation.path === '/api/v1/tenants' ? world.keys : world.keys.filter((key) => !key.readOnly);
  const headers: Record<string, string> = {};
  const keyRoll = random.int(12);
  if (keyRoll === 0) headers['x-api-key'] = random.pick(['aiaas_garbage', '', 'x'.repeat(10_000)]);
  else if (keyRoll === 1) headers.authorization = random.pick(['Bearer', 'Basic abc', `Bearer ${'a'.repeat(5000)}`]);
  else if (coherent) {
    const label = random.pick(['a-admin', 'a-developer']);
    headers.authorization = `Bearer ${world.keys.find((key) => key.label === label)!.key}`;
  }
  else if (keyRoll > 2) headers.authorization = `Bearer ${random.pick(fuzzKeys).key}`;
  if (random.chance(0.05)) headers['x-request-id'] = random.pick(['ok-id', 'x'.repeat(500), 'bad id\u0001']);

  const request: FuzzRequest = { method: operation.method, url, headers };
  if (operation.method === 'GET' || operation.method === 'DELETE') {
    if (random.chance(0.1)) request.payload = '{"unexpected": true}';
    return request;
  }
  const isUpload = operation.contentTypes.includes('application/octet-stream');
  const bodyRoll = random.int(10);
  if (isUpload && bodyRoll < 6) {
    request.payload = Buffer.from(random.chance(0.2) ? random.pick(world.seedFiles) : mutateBytes(random, random.pick(world.seedFiles), world.seedFiles));
    headers['content-type'] = random.pick(['application/octet-stream', 'application/x-tar', 'text/csv', 'multipart/form-data; boundary=x']);
    return request;
  }
  if (bodyRoll === 6) {
    request.payload = Buffer.from(random.bytes(random.int(2000)));
  } else if (bodyRoll === 7) {
    request.payload = random.pick(['', '{', '{"a":', 'null', '[]', '"text"', '{"a":1}}', '\u00ff\u00fe{}', '{"a":"\ud800"}']);
  } else if (bodyRoll === 8) {
    // Invalid UTF-8 inside a JSON string.
    request.payload = Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')]);
  } else {
    // The schema gives every field its type; the template knows this server's real names (models,
    // inputs, datasets), so half the schema-described requests still start from the template.
    const valid = operation.schema === undefined || random.chance(0.5) ? templateBody(random, world, operation) : fromSchema(random, operation.schema);
    request.payload = random.chance(0.2) ? JSON.stringify(valid) : mutateJson(random, valid);
  }
  headers['content-type'] = random.chance(0.8)
    ? 'application/json'
    : random.pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'application/json; charset=utf-16', 'application/xml', '', 'x'.repeat(3000)]);
  return request;
}

function describeRequest(request: FuzzRequest): string {
  const body = request.payload === undefined ? '' : ` body ${String(request.payload).slice(0, 120)}${String(request.payload).length > 120 ? `… (${request.payload.length} bytes)` : ''}`;
  return `${request.method} ${request.url.slice(0, 200)} [${request.headers['content-type'] ?? ''}]${body}`;
}

/** Checks one response against the contract; returns what is wrong, if anything. */
export function checkResponse(url: string, response: LightMyRequestResponse): string | undefined {
  const status = response.statusCode;
  if (status === 500) return `500: ${response.body.slice(0, 300)}`;
  if (status < 400) return undefined;
  if (response.rawPayload.length > errorBodyLimit) return `error body of ${response.rawPayload.length} bytes (echoes input?)`;
  let body: unknown;
  try {
    body = response.json();
  } catch {
    return `error body is not JSON: ${response.body.slice(0, 200)}`;
  }
  const record = (body ?? {}) as { error?: unknown };
  let code: unknown;
  if (isOpenAiUrl(url)) {
    code = response.headers['x-aiaas-error-code'];
    const error = record.error as { message?: unknown; type?: unknown } | undefined;
    if (typeof error !== 'object' || error === null || typeof error.message !== 'string' || typeof error.type !== 'string') {
      return `OpenAI error body without {"error": {message, type, param, code}}: ${response.body.slice(0, 200)}`;
    }
  } else if (isInferenceUrl(url)) {
    code = response.headers['x-aiaas-error-code'];
    if (typeof record.error !== 'string') return `protocol error body without {"error": "…"}: ${response.body.slice(0, 200)}`;
  } else {
    const error = record.error as { code?: unknown; message?: unknown } | undefined;
    if (typeof error !== 'object' || error === null || typeof error.message !== 'string') return `platform error body without {"error": {code, message}}: ${response.body.slice(0, 200)}`;
    code = error.code;
  }
  if (typeof code !== 'string' || !(code in catalogue)) return `error code ${String(code)} is not in the catalogue`;
  if (catalogue[code as ErrorCode]!.status !== status) return `status ${status} but ${code} is ${catalogue[code]!.status} in the catalogue`;
  if (status >= 500 && code !== 'MODEL_NOT_READY' && code !== 'QUEUE_FULL' && code !== 'MODEL_LOAD_FAILED') return `${status} ${code}`;
  return undefined;
}

export interface HttpFuzzStats {
  cases: number;
  statuses: Record<number, number>;
  failures: HttpFuzzFailure[];
}

/** Sends cases until `count` are done or `until` (epoch ms) passes; checks liveness as it goes. */
export async function runHttpFuzz(world: HttpFuzzWorld, random: Random, limits: { count?: number; until?: number }): Promise<HttpFuzzStats> {
  const stats: HttpFuzzStats = { cases: 0, statuses: {}, failures: [] };
  const seen = new Set<string>();
  while ((limits.count === undefined || stats.cases < limits.count) && (limits.until === undefined || Date.now() < limits.until)) {
    const request = buildRequest(random, world);
    let problem: string | undefined;
    let status = 0;
    try {
      const response = await world.server.app.inject({ method: request.method, url: request.url, headers: request.headers, ...(request.payload === undefined ? {} : { payload: request.payload }) });
      status = response.statusCode;
      problem = checkResponse(request.url, response);
    } catch (error) {
      problem = `inject threw ${(error as Error).message}`;
    }
    stats.cases++;
    stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
    if (problem !== undefined) {
      const key = `${request.method} ${request.url.split('?')[0]!.slice(0, 60)} ${problem.slice(0, 60)}`;
      if (!seen.has(key)) {
        seen.add(key);
        stats.failures.push({ request: describeRequest(request), status, problem, sent: request });
      }
    }
    if (stats.cases % 50 === 0) {
      await world.replenish();
      const health = await world.server.app.inject({ method: 'GET', url: '/healthz' });
      if (health.statusCode !== 200) stats.failures.push({ request: 'GET /healthz', status: health.statusCode, problem: 'server stopped answering' });
    }
  }
  return stats;
}

/** Sends one stored request and checks its response. */
export async function replayHttpCase(world: HttpFuzzWorld, request: FuzzRequest): Promise<string | undefined> {
  const response = await world.server.app.inject({ method: request.method, url: request.url, headers: request.headers, ...(request.payload === undefined ? {} : { payload: request.payload }) });
  return checkResponse(request.url, response);
}

/**
 * A failing request as a corpus file: the body base64 (fuzz bodies are often not text) and API keys
 * replaced by their labels (`{{key:a-admin}}`), since every run mints new keys.
 */
export function encodeHttpCase(world: HttpFuzzWorld, request: FuzzRequest): string {
  const headers = Object.fromEntries(
    Object.entries(request.headers).map(([name, value]) => {
      const key = world.keys.find((candidate) => value.includes(candidate.key));
      return [name, key === undefined ? value : value.replace(key.key, `{{key:${key.label}}}`)];
    }),
  );
  const payload = request.payload === undefined ? undefined : Buffer.from(request.payload).toString('base64');
  return `${JSON.stringify({ method: request.method, url: request.url, headers, payload }, null, 2)}\n`;
}

export function decodeHttpCase(world: HttpFuzzWorld, bytes: Uint8Array): FuzzRequest {
  const stored = JSON.parse(Buffer.from(bytes).toString('utf8')) as {
    method: Method;
    url: string;
    headers: Record<string, string>;
    payload?: string;
    /** Hand-written cases keep huge bodies small on disk: text pieces, or [text, times] repeated. */
    payloadParts?: (string | [string, number])[];
  };
  if (stored.payloadParts !== undefined) {
    stored.payload = Buffer.from(stored.payloadParts.map((part) => (typeof part === 'string' ? part : part[0].repeat(part[1]))).join('')).toString('base64');
  }
  const headers = Object.fromEntries(
    Object.entries(stored.headers).map(([name, value]) => [
      name,
      value.replace(/\{\{key:([a-z-]+)\}\}/, (_, label: string) => world.keys.find((key) => key.label === label)?.key ?? 'unknown-key'),
    ]),
  );
  return { method: stored.method, url: stored.url, headers, ...(stored.payload === undefined ? {} : { payload: Buffer.from(stored.payload, 'base64') }) };
}

/** The end-of-run checks: the server answers and the protected tenant's data is unchanged. */
export async function finishHttpFuzz(world: HttpFuzzWorld): Promise<HttpFuzzFailure[]> {
  const failures: HttpFuzzFailure[] = [];
  const health = await world.server.app.inject({ method: 'GET', url: '/healthz' });
  if (health.statusCode !== 200) failures.push({ request: 'GET /healthz', status: health.statusCode, problem: 'server stopped answering' });
  const { protectedAdmin, protectedDataset } = world as HttpFuzzWorld & { protectedAdmin: string; protectedDataset: string };
  const after = await takeSnapshot(world.server, protectedAdmin, world.inputName, protectedDataset);
  if (after !== world.snapshot) {
    const before = world.snapshot.split('\n');
    const changed = after.split('\n').flatMap((line, index) => (line === before[index] ? [] : [`${snapshotParts[index]}: ${before[index]} -> ${line}`]));
    failures.push({ request: 'snapshot', status: 0, problem: `stored data changed: ${changed.join('; ')}` });
  }
  return failures;
}
