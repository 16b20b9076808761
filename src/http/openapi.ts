/**
 * The OpenAPI 3.1 document, generated from the routes the app actually registered (collected by an
 * onRoute hook) with the schemas they declared (src/http/schemas/), plus a hand-written summary per
 * route. A registered route without a description or schema still appears, marked undocumented, and
 * a test fails on it: the inventory cannot drift.
 */
import type { TSchema } from '@sinclair/typebox';
import type { Permission } from '../security/roles.ts';
import { ErrorBody, ProtocolErrorBody, type ResponseSchema, type RouteSchema } from './schemas/common.ts';
import { OpenAiErrorBody } from './schemas/llm.ts';

export interface RegisteredRoute {
  method: string;
  /** Fastify syntax, `/api/v1/models/:name`. */
  url: string;
  /** What the route declared; absent on routes without a schema (extensions, tests). */
  schema?: RouteSchema;
}

export interface RouteDescription {
  summary: string;
  /** Permission required; 'none' for public routes, 'any' for any valid key. */
  permission: Permission | 'none' | 'any';
  tag: 'service' | 'identity' | 'datasets' | 'models' | 'jobs' | 'audit' | 'backups' | 'v2' | 'tfserving' | 'openai' | 'ollama' | 'billing' | 'quality';
}

const v2InferForms =
  'JSON, or (Triton binary tensor data extension) a JSON header of Inference-Header-Content-Length bytes then raw tensor bytes: parameters.binary_data_size on inputs, binary_data / binary_data_output for outputs';

export const routeDescriptions: Readonly<Record<string, RouteDescription>> = {
  'GET /healthz': { summary: 'Process is up: {"status":"ok"}', permission: 'none', tag: 'service' },
  'GET /readyz': { summary: 'Database and artifact store reachable: 200 {"status":"ready"} or 503', permission: 'none', tag: 'service' },
  'GET /metrics': { summary: "Prometheus metrics (text format): the caller's tenant's series; every series for unrestricted operator keys; no key needed with --metrics-public", permission: 'metrics:read', tag: 'service' },
  'GET /openapi.json': { summary: 'This OpenAPI document', permission: 'none', tag: 'service' },
  'GET /docs': { summary: 'HTML rendering of this document', permission: 'none', tag: 'service' },

  'GET /api/v1/me': { summary: 'The calling key, its tenant and permissions', permission: 'any', tag: 'identity' },
  'POST /api/v1/tenants': { summary: 'Create a tenant and its first admin key (shown once); operator admins only', permission: 'tenants:manage', tag: 'identity' },
  'GET /api/v1/tenants': { summary: 'List tenants; operator admins only', permission: 'tenants:manage', tag: 'identity' },
  'DELETE /api/v1/tenants/:id': { summary: 'Destroy the tenant data key (crypto-shredding) and delete the tenant', permission: 'tenants:manage', tag: 'identity' },
  'POST /api/v1/keys': { summary: 'Create an API key {name, role, allowedModels?, expiresAt?}; the key is shown once', permission: 'keys:manage', tag: 'identity' },
  'GET /api/v1/keys': { summary: "List the tenant's API keys (never their secrets or hashes)", permission: 'keys:manage', tag: 'identity' },
  'DELETE /api/v1/keys/:id': { summary: 'Revoke a key, effective on its next request', permission: 'keys:manage', tag: 'identity' },

  'POST /api/v1/datasets': { summary: 'Upload a dataset: ?name=N[&format=csv|jsonl|idx][&label=COLUMN], raw bytes or multipart file (+labels for IDX)', permission: 'datasets:write', tag: 'datasets' },
  'GET /api/v1/datasets': { summary: 'List datasets (?limit, ?offset)', permission: 'datasets:read', tag: 'datasets' },
  'GET /api/v1/datasets/:id': { summary: 'A dataset: format, rowCount, bytes, schema', permission: 'datasets:read', tag: 'datasets' },
  'DELETE /api/v1/datasets/:id': { summary: 'Delete a dataset and its stored file', permission: 'datasets:write', tag: 'datasets' },

  'POST /api/v1/models': { summary: 'Create a model {name, description?, batching?, exportable?, outputPolicy?}', permission: 'models:write', tag: 'models' },
  'GET /api/v1/models': { summary: 'List models with version numbers and aliases', permission: 'models:read', tag: 'models' },
  'GET /api/v1/models/:name': { summary: 'A model with its version numbers and aliases', permission: 'models:read', tag: 'models' },
  'PATCH /api/v1/models/:name': { summary: 'Update {description?, batching?, exportable?, outputPolicy?}; only the operator can set exportable back to true', permission: 'models:write', tag: 'models' },
  'DELETE /api/v1/models/:name': { summary: 'Delete a model and its versions; 409 ALIAS_IN_USE while aliases exist', permission: 'models:write', tag: 'models' },
  'POST /api/v1/models/:name/versions': { summary: 'Add a version: an .onnx file, a saved-model .tar, or multipart file; validated in a child process first', permission: 'models:write', tag: 'models' },
  'GET /api/v1/models/:name/versions': { summary: 'Versions with signature, metrics and downloadable files', permission: 'models:read', tag: 'models' },
  'GET /api/v1/models/:name/versions/:version': { summary: 'One version (number, alias or "latest")', permission: 'models:read', tag: 'models' },
  'DELETE /api/v1/models/:name/versions/:version': { summary: 'Delete a version by number; 409 ALIAS_IN_USE while an alias points at it', permission: 'models:write', tag: 'models' },
  'GET /api/v1/models/:name/versions/:version/files/:file': { summary: 'Download model.onnx, model.safetensors, spec.json or metrics.json; 403 EXPORT_FORBIDDEN for a non-exportable model (only metrics.json then)', permission: 'models:download', tag: 'models' },
  'PUT /api/v1/models/:name/aliases/:alias': {
    summary: 'Point an alias at {version} or a weighted {split}, with a {shadow} and a promotion {gate}; moves atomically; 409 GATE_FAILED, 202 while the gate evaluates; {force} for admins',
    permission: 'aliases:write',
    tag: 'models',
  },
  'GET /api/v1/models/:name/aliases': { summary: "A model's aliases", permission: 'models:read', tag: 'models' },
  'DELETE /api/v1/models/:name/aliases/:alias': { summary: 'Delete an alias', permission: 'aliases:write', tag: 'models' },
  'GET /api/v1/models/:name/aliases/:alias/shadow': { summary: "The alias's live/shadow comparisons: agreement rate and latencies (this process)", permission: 'models:read', tag: 'models' },
  'POST /api/v1/models/:name/versions/:version/evaluations': { summary: 'Evaluate a version on a labelled dataset {datasetId, outputs?, label?, classNames?, topK?, task?} as an evaluate job', permission: 'jobs:write', tag: 'models' },
  'GET /api/v1/models/:name/versions/:version/evaluations': { summary: "A version's evaluations: unfinished ones, then the stored reports", permission: 'models:read', tag: 'models' },
  'GET /api/v1/models/:name/versions/:version/evaluations/:id': { summary: 'One evaluation with its report (docs/quality.md)', permission: 'models:read', tag: 'models' },

  'POST /api/v1/jobs': { summary: 'Submit a training job {model, spec, datasetId, …} (400 INVALID_SPEC at once for a bad spec), or {kind: "pull" | "evaluate", …}', permission: 'jobs:write', tag: 'jobs' },
  'GET /api/v1/jobs': { summary: 'List jobs (?status=&limit=&offset=)', permission: 'jobs:read', tag: 'jobs' },
  'GET /api/v1/jobs/:id': { summary: 'A job: status, epoch, step, loss, history, result version', permission: 'jobs:read', tag: 'jobs' },
  'GET /api/v1/jobs/:id/events': { summary: 'Server-Sent Events of job progress (Last-Event-ID / ?after= resume)', permission: 'jobs:read', tag: 'jobs' },
  'POST /api/v1/jobs/:id/cancel': { summary: 'Cancel a job; 409 JOB_NOT_CANCELLABLE when finished', permission: 'jobs:write', tag: 'jobs' },

  'GET /api/v1/audit': { summary: 'Audit entries in order (?after=SEQ&limit=N); the whole chain for operator admins', permission: 'audit:read', tag: 'audit' },
  'GET /api/v1/audit/verify': { summary: 'Verify the hash chain: {ok, count} or {ok:false, position, seq, reason}; operator admins only', permission: 'audit:read', tag: 'audit' },
  'GET /api/v1/audit/export': { summary: 'Audit entries as JSON lines', permission: 'audit:read', tag: 'audit' },
  'POST /api/v1/admin/backups': { summary: 'Take an online backup into the server\'s backupDir (no body; it picks the name); operator admins only', permission: 'tenants:manage', tag: 'backups' },
  'GET /api/v1/admin/backups': { summary: 'Backups in the server\'s backupDir, newest first; operator admins only', permission: 'tenants:manage', tag: 'backups' },

  'GET /api/v1/plans': { summary: 'Billing plans with their source (file or api) and how many tenants are on each; operator admins only', permission: 'tenants:manage', tag: 'billing' },
  'GET /api/v1/plans/:name': { summary: 'One billing plan; operator admins only', permission: 'tenants:manage', tag: 'billing' },
  'POST /api/v1/plans': { summary: 'Create a billing plan (prices in integer micro-units); 409 if the name exists; operator admins only', permission: 'tenants:manage', tag: 'billing' },
  'PUT /api/v1/plans/:name': { summary: 'Create (201) or replace (200) a billing plan; tenants on it get the new terms from now; operator admins only', permission: 'tenants:manage', tag: 'billing' },
  'DELETE /api/v1/plans/:name': { summary: 'Delete a plan no tenant is on (409 otherwise); operator admins only', permission: 'tenants:manage', tag: 'billing' },
  'GET /api/v1/tenants/:id/plan': { summary: "A tenant's plan and plan history (effective from/to); operator admins only", permission: 'tenants:manage', tag: 'billing' },
  'PUT /api/v1/tenants/:id/plan': { summary: "Move a tenant to a plan from now ({\"plan\": null}: no plan, unlimited); operator admins only", permission: 'tenants:manage', tag: 'billing' },
  'GET /api/v1/quota': { summary: "The caller's tenant's plan, this month's metered use, charges and what is left of each hard cap", permission: 'usage:read', tag: 'billing' },
  'PUT /api/v1/webhooks': { summary: "Set the tenant's webhook {url, events}; the signing secret is in this answer only", permission: 'keys:manage', tag: 'billing' },
  'GET /api/v1/webhooks': { summary: "The tenant's webhook (never its secret)", permission: 'keys:manage', tag: 'billing' },
  'DELETE /api/v1/webhooks': { summary: "Remove the tenant's webhook and its undelivered events", permission: 'keys:manage', tag: 'billing' },
  'GET /api/v1/webhooks/deliveries': { summary: "The tenant's latest webhook deliveries: status, attempts, last error", permission: 'keys:manage', tag: 'billing' },
  'POST /api/v1/webhooks/test': { summary: 'Queue a webhook.test event (no body); queued is false when the webhook does not subscribe to it', permission: 'keys:manage', tag: 'billing' },
  'GET /api/v1/invoices': { summary: "The tenant's monthly invoices, newest first (this month's a draft): period, status, totals per currency; ?tenant= for operator admins", permission: 'usage:read', tag: 'billing' },
  'GET /api/v1/invoices/:period': { summary: 'The invoice of a UTC month (YYYY-MM) as JSON, CSV or printable HTML (Accept or ?format=); a closed month recomputes to the same bytes', permission: 'usage:read', tag: 'billing' },
  'GET /api/v1/usage': { summary: 'Inference request counts per model and day (?from=YYYY-MM-DD&to=…&model=)', permission: 'usage:read', tag: 'audit' },

  'GET /v2': { summary: 'KServe V2 server metadata', permission: 'any', tag: 'v2' },
  'GET /v2/health/live': { summary: 'KServe V2 liveness', permission: 'none', tag: 'v2' },
  'GET /v2/health/ready': { summary: 'KServe V2 readiness', permission: 'none', tag: 'v2' },
  'GET /v2/models/:name': { summary: 'Model metadata (latest version): inputs and outputs', permission: 'inference', tag: 'v2' },
  'GET /v2/models/:name/versions/:version': { summary: 'Model metadata of a version or alias', permission: 'inference', tag: 'v2' },
  'GET /v2/models/:name/ready': { summary: 'Model readiness', permission: 'inference', tag: 'v2' },
  'GET /v2/models/:name/versions/:version/ready': { summary: 'Version readiness', permission: 'inference', tag: 'v2' },
  'POST /v2/models/:name/infer': { summary: `Inference on the latest version; ${v2InferForms}`, permission: 'inference', tag: 'v2' },
  'POST /v2/models/:name/versions/:version/infer': { summary: `Inference on a version or alias; ${v2InferForms}`, permission: 'inference', tag: 'v2' },
  'POST /v2/repository/index': { summary: 'Model repository index (Triton extension)', permission: 'inference', tag: 'v2' },
  'POST /v2/repository/models/:name/load': { summary: 'Load a model now (Triton extension)', permission: 'models:write', tag: 'v2' },
  'POST /v2/repository/models/:name/unload': { summary: 'Unload every version of a model (Triton extension)', permission: 'models:write', tag: 'v2' },

  'POST /tfserving/v1/models/:segment': { summary: 'TF-Serving predict: POST /tfserving/v1/models/{name}:predict', permission: 'inference', tag: 'tfserving' },
  'POST /tfserving/v1/models/:name/versions/:segment': { summary: 'TF-Serving predict on a version: …/versions/{v}:predict', permission: 'inference', tag: 'tfserving' },
  'POST /tfserving/v1/models/:name/labels/:segment': { summary: 'TF-Serving predict on an alias: …/labels/{alias}:predict', permission: 'inference', tag: 'tfserving' },
  'GET /tfserving/v1/models/:name': { summary: 'TF-Serving model status (all versions)', permission: 'inference', tag: 'tfserving' },
  'GET /tfserving/v1/models/:name/versions/:selector': { summary: 'TF-Serving status of a version', permission: 'inference', tag: 'tfserving' },
  'GET /tfserving/v1/models/:name/labels/:selector': { summary: 'TF-Serving status of an alias', permission: 'inference', tag: 'tfserving' },
  'GET /tfserving/v1/models/:name/versions/:selector/metadata': { summary: 'TF-Serving signature metadata of a version', permission: 'inference', tag: 'tfserving' },
  'GET /tfserving/v1/models/:name/labels/:selector/metadata': { summary: 'TF-Serving signature metadata of an alias', permission: 'inference', tag: 'tfserving' },
  'GET /tfserving/v1/models/:name/metadata': { summary: 'TF-Serving signature metadata (latest version)', permission: 'inference', tag: 'tfserving' },

  'GET /v1/models': { summary: "OpenAI: the caller's language models (NAME and NAME@ALIAS ids)", permission: 'inference', tag: 'openai' },
  'GET /v1/models/:model': { summary: 'OpenAI: one language model (NAME, NAME@VERSION or NAME@ALIAS)', permission: 'inference', tag: 'openai' },
  'POST /v1/chat/completions': { summary: 'OpenAI chat completions, streamed as server-sent events with stream: true (docs/llm.md)', permission: 'inference', tag: 'openai' },
  'POST /v1/completions': { summary: 'OpenAI legacy text completions', permission: 'inference', tag: 'openai' },
  'POST /v1/embeddings': { summary: 'OpenAI embeddings (float or base64)', permission: 'inference', tag: 'openai' },
  'POST /api/generate': { summary: 'Ollama generate: NDJSON stream or one object (stream: false)', permission: 'inference', tag: 'ollama' },
  'POST /api/chat': { summary: 'Ollama chat: NDJSON stream or one object (stream: false)', permission: 'inference', tag: 'ollama' },
  'POST /api/embed': { summary: 'Ollama embeddings', permission: 'inference', tag: 'ollama' },
  'GET /api/tags': { summary: "Ollama: the caller's language models as NAME:TAG", permission: 'inference', tag: 'ollama' },
  'POST /api/show': { summary: 'Ollama: a model\'s details, template and metadata', permission: 'inference', tag: 'ollama' },
  'GET /api/ps': { summary: 'Ollama: loaded language models with their memory', permission: 'inference', tag: 'ollama' },
  'GET /api/version': { summary: 'Ollama API version this adapter follows', permission: 'inference', tag: 'ollama' },
  'POST /api/pull': { summary: 'Ollama pull from {model, url, sha256?}: a pull job whose progress streams as NDJSON; NAME:TAG makes TAG an alias of the new version', permission: 'models:write', tag: 'ollama' },
  'DELETE /api/delete': { summary: 'Ollama delete: NAME deletes the model, NAME:VERSION one version, NAME:ALIAS the alias', permission: 'models:write', tag: 'ollama' },
  'POST /v2/models/:name/explain': { summary: 'Explain a prediction of the latest version: attributions with the input\'s shape (integrated gradients, occlusion, permutation), or a heatmap PNG; 403 OUTPUT_POLICY_RESTRICTED under an output policy (docs/quality.md)', permission: 'inference', tag: 'v2' },
  'POST /v2/models/:name/versions/:version/explain': { summary: 'Explain a prediction of a version or alias (docs/quality.md)', permission: 'inference', tag: 'v2' },
  'GET /api/v1/models/:name/versions/:version/provenance': { summary: "The version's provenance record and its Ed25519 signature; 404 PROVENANCE_NOT_FOUND for versions older than records", permission: 'models:read', tag: 'models' },
  'GET /api/v1/signing-key': { summary: 'The public key provenance records are signed with (PEM and raw base64); no key needed', permission: 'none', tag: 'models' },
  'PATCH /api/v1/tenants/:tenantId/models/:name': { summary: "Set or lift any tenant's export-control mark {exportable}; audited (model.export-control); operator admins only", permission: 'tenants:manage', tag: 'models' },
  'GET /api/v1/tenants/:tenantId/models/:name/versions/:version/files/:file': { summary: "Download any tenant's model file, exportable or not; audited (version.download.operator); operator admins only", permission: 'tenants:manage', tag: 'models' },
  'GET /api/v1/models/:name/drift': { summary: 'Drift of a version (?version=N|ALIAS) against its baseline: PSI and KS per feature, output-class PSI', permission: 'models:read', tag: 'quality' },
  'POST /api/v1/models/:name/versions/:version/bench-reports': { summary: 'Store a load-test report (aiaas bench) with the version', permission: 'models:write', tag: 'quality' },
  'GET /api/v1/models/:name/versions/:version/bench-reports': { summary: "The version's load-test reports, newest first", permission: 'models:read', tag: 'quality' },
  'GET /api/v1/datasets/:id/rows': { summary: 'Rows of a dataset (?offset=&limit=, at most 1000) for load tests', permission: 'datasets:read', tag: 'quality' },
  'POST /api/v1/sweeps': { summary: 'Start a hyperparameter sweep {baseJob, space, strategy, maxTrials, parallelism, metric, register}', permission: 'jobs:write', tag: 'quality' },
  'GET /api/v1/sweeps': { summary: 'List sweeps', permission: 'jobs:read', tag: 'quality' },
  'GET /api/v1/sweeps/:id': { summary: 'A sweep and its leaderboard', permission: 'jobs:read', tag: 'quality' },
  'GET /api/v1/sweeps/:id/events': { summary: 'Server-Sent Events: the leaderboard on every change (sweep-leaderboard), sweep-finished last', permission: 'jobs:read', tag: 'quality' },
  'POST /api/v1/sweeps/:id/cancel': { summary: 'Cancel a sweep and its unfinished trial jobs', permission: 'jobs:write', tag: 'quality' },
  'POST /api/v1/sweeps/:id/register': { summary: "Register the best trial's model as a version (once)", permission: 'models:write', tag: 'quality' },
  'POST /api/v1/models/:name/versions/:version/quantize': { summary: 'Start a quantize job making an int8 version of this one (dynamic-int8): 202 with the job', permission: 'models:write', tag: 'models' },
  'GET /api/v1/models/:name/versions/:version/quantization': { summary: 'The report stored with a version made by a quantize job: size and latency ratios, accuracy delta, largest output difference, nodes left float32', permission: 'models:read', tag: 'models' },
  'GET /api/v1/models/:name/versions/:version/cost': { summary: "The version's cost card: parameters, file size, FLOPs per item, calibration figures, memory, price", permission: 'models:read', tag: 'models' },
  'POST /api/v1/models/:name/versions/:version/cost/calibrate': { summary: 'Measure latency and items/s (GGUF: tokens/s) through the model manager, store them with the version, answer the cost card', permission: 'models:write', tag: 'models' },
  'GET /': { summary: 'Redirects to the web console at /console/', permission: 'none', tag: 'service' },
  'GET /console*': { summary: 'The web console (docs/console.md): its files, and its index.html for /console/ and its client routes; 503 with a page saying to run npm run build when it is not built', permission: 'none', tag: 'service' },
};

export function routeKey(route: RegisteredRoute): string {
  return `${route.method.toUpperCase()} ${route.url}`;
}

export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** A schema as plain JSON: TypeBox's symbol-keyed metadata dropped. */
function plain(schema: TSchema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}

function isContentMap(response: ResponseSchema): response is { content: Record<string, { schema: TSchema }> } {
  return typeof response === 'object' && response !== null && 'content' in response && typeof response.content === 'object' && !('type' in response);
}

function parametersOf(route: RegisteredRoute): Record<string, unknown>[] {
  const pathSchemas = (route.schema?.params?.properties ?? {}) as Record<string, TSchema>;
  const path = [...route.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((match) => {
    const name = match[1]!;
    return { name, in: 'path', required: true, schema: pathSchemas[name] === undefined ? { type: 'string' } : plain(pathSchemas[name]) };
  });
  const query = route.schema?.querystring;
  const required = new Set(query?.required ?? []);
  const queryParameters = Object.entries((query?.properties ?? {}) as Record<string, TSchema>).map(([name, schema]) => ({
    name,
    in: 'query',
    required: required.has(name),
    schema: plain(schema),
    ...(typeof schema.description === 'string' ? { description: schema.description } : {}),
  }));
  return [...path, ...queryParameters];
}

function requestBodyOf(schema: RouteSchema | undefined): Record<string, unknown> | undefined {
  const documented = Object.entries(schema?.documentedBody ?? {}).map(([type, body]) => [type, { schema: plain(body) }] as const);
  // A validated JSON body, plus any other form the route also takes (V2's binary tensor data).
  if (schema?.body !== undefined) return { required: true, content: Object.fromEntries([['application/json', { schema: plain(schema.body) }], ...documented]) };
  if (documented.length > 0) return { required: false, content: Object.fromEntries(documented) };
  return undefined;
}

function responseOf(status: string, response: ResponseSchema): Record<string, unknown> {
  const description = Number(status) < 300 ? 'success' : 'see the schema';
  if (isContentMap(response)) {
    return { description, content: Object.fromEntries(Object.entries(response.content).map(([type, { schema }]) => [type, { schema: plain(schema) }])) };
  }
  // No body: 204s, and the V2 routes whose answer is the status alone.
  if ((response as TSchema).type === 'null') return { description };
  return { description, content: { 'application/json': { schema: plain(response as TSchema) } } };
}

const protocolTags: ReadonlySet<RouteDescription['tag']> = new Set(['v2', 'tfserving', 'ollama']);

export function buildOpenApiDocument(routes: readonly RegisteredRoute[], info: { version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const sorted = [...routes].sort((left, right) => left.url.localeCompare(right.url) || left.method.localeCompare(right.method));
  for (const route of sorted) {
    const description = routeDescriptions[routeKey(route)];
    const path = openApiPath(route.url);
    const parameters = parametersOf(route);
    const requestBody = requestBodyOf(route.schema);
    const errorSchema = description?.tag === 'openai' ? 'OpenAiError' : description !== undefined && protocolTags.has(description.tag) ? 'ProtocolError' : 'Error';
    const declared = Object.entries(route.schema?.response ?? {}).map(([status, response]) => [status, responseOf(status, response)]);
    const operation: Record<string, unknown> = {
      operationId: `${route.method.toLowerCase()}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_match, next: string | undefined) => (next ?? '').toUpperCase())}`,
      summary: description?.summary ?? 'UNDOCUMENTED',
      tags: [description?.tag ?? 'undocumented'],
      'x-aiaas-permission': description?.permission ?? 'unknown',
      ...(description?.permission === 'none' ? { security: [] } : {}),
      ...(parameters.length === 0 ? {} : { parameters }),
      ...(requestBody === undefined ? {} : { requestBody }),
      responses: {
        ...(declared.length === 0 ? { 200: { description: 'UNDOCUMENTED' } } : Object.fromEntries(declared)),
        default: { description: 'error', content: { 'application/json': { schema: { $ref: `#/components/schemas/${errorSchema}` } } } },
      },
    };
    (paths[path] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'aiaas',
      version: info.version,
      description: 'Self-hostable AI models as a service. Errors: {"error": {code, message, details}} (V2 and TF-Serving routes: {"error": "…"} with the code in x-aiaas-error-code).',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }, { apiKey: [] }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer aiaas_…' },
        apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
      },
      schemas: { Error: plain(ErrorBody), ProtocolError: plain(ProtocolErrorBody), OpenAiError: plain(OpenAiErrorBody) },
    },
    paths,
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

/** A self-contained page (no scripts, no CDN) listing every operation of the document. */
export function renderDocsPage(document: Record<string, unknown>): string {
  const paths = document.paths as Record<string, Record<string, { summary: string; tags: string[]; 'x-aiaas-permission': string }>>;
  const rows: string[] = [];
  for (const [path, operations] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      rows.push(
        `<tr><td>${escapeHtml(operation.tags[0] ?? '')}</td><td class="m">${method.toUpperCase()}</td><td><code>${escapeHtml(path)}</code></td><td>${escapeHtml(operation['x-aiaas-permission'])}</td><td>${escapeHtml(operation.summary)}</td></tr>`,
      );
    }
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>aiaas API</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.35rem .6rem;text-align:left;vertical-align:top}th{background:#f4f4f4}.m{font-weight:bold;font-family:monospace}code{font-size:.95em}</style>
</head><body>
<h1>aiaas HTTP API</h1>
<p>Send <code>Authorization: Bearer aiaas_…</code> (or <code>x-api-key</code>) on every route whose permission is not <em>none</em>. Machine-readable: <a href="/openapi.json">/openapi.json</a>.</p>
<table><thead><tr><th>area</th><th>method</th><th>path</th><th>permission</th><th>what</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></body></html>
`;
}
