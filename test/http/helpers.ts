import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { loadConfig, type AiaasConfig, type ConfigValue } from '../../src/config.ts';
import { Model } from '../../src/engine/index.ts';
import { buildApp, type BuildAppOptions } from '../../src/http/app.ts';
import { generateMasterKey } from '../../src/security/key-ring.ts';
import { expectMatchesSchema } from './response-schemas.ts';
import { createServerContext, type ServerContext, type ServerContextOptions } from '../../src/startup/context.ts';
import type { LanguageModelRuntime } from '../../src/inference/model-manager.ts';

export interface TestServer {
  app: FastifyInstance;
  context: ServerContext;
  config: AiaasConfig;
  dataDir: string;
  /** The generated bootstrap admin key of the operator tenant. */
  adminKey: string;
  close(): Promise<void>;
}

export async function startTestServer(
  flags: Record<string, ConfigValue> = {},
  options: ServerContextOptions = {},
  appOptions: BuildAppOptions = {},
): Promise<TestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'aiaas-http-'));
  const config = loadConfig({
    flags: { dataDir, masterKey: generateMasterKey(), logLevel: 'silent', warmup: false, batchMaxQueueDelayMicroseconds: 0, ...flags },
    env: {},
  });
  const context = await createServerContext(config, { logger: pino({ level: 'silent' }), usageFlushIntervalMs: 0, ...options });
  const app = await buildApp(context, appOptions);
  return {
    app,
    context,
    config,
    dataDir,
    adminKey: context.bootstrap.generatedKey!,
    close: async () => {
      await app.close();
      await context.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

export async function call(
  app: FastifyInstance,
  key: string | undefined,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  const response = await app.inject({
    method,
    url,
    headers: { ...(key === undefined ? {} : bearer(key)), ...headers },
    ...(body === undefined ? {} : Buffer.isBuffer(body) || typeof body === 'string' ? { payload: body } : { payload: body as object }),
  });
  // Every response a test records must match the schema its route declares (drift fails here).
  expectMatchesSchema(app.registeredRoutes, method, url, { status: response.statusCode, contentType: response.headers['content-type']?.toString(), body: response.body });
  return response;
}

/** The fields of a job body most tests check. */
export interface JobBody {
  id: string;
  kind: string;
  status: string;
  error: { code: string; message: string } | null;
  resultVersion: { version: number } | null;
}

/** Polls a job until it is final (succeeded, failed or cancelled); returns its body. */
export async function finalJob<Job = Record<string, unknown>>(server: TestServer, key: string, jobId: string): Promise<Job> {
  for (;;) {
    const job = (await call(server.app, key, 'GET', `/api/v1/jobs/${jobId}`)).json().job as Job & { status: string };
    if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Creates a tenant (as the operator admin) and returns its admin key. */
export async function createTenant(server: TestServer, name: string): Promise<{ id: string; adminKey: string }> {
  const response = await call(server.app, server.adminKey, 'POST', '/api/v1/tenants', { name });
  if (response.statusCode !== 201) throw new Error(`tenant create failed: ${response.body}`);
  const body = response.json();
  return { id: body.tenant.id, adminKey: body.adminKey.key };
}

export async function createKey(
  server: TestServer,
  adminKey: string,
  role: string,
  extra: Record<string, unknown> = {},
): Promise<{ id: string; key: string }> {
  const response = await call(server.app, adminKey, 'POST', '/api/v1/keys', { name: `${role}-key`, role, ...extra });
  if (response.statusCode !== 201) throw new Error(`key create failed: ${response.body}`);
  const body = response.json();
  return { id: body.id, key: body.key };
}

export const classifierSpec = {
  name: 'blobs',
  input: { shape: [4] },
  layers: [
    { type: 'dense', units: 8, activation: 'tanh' },
    { type: 'dense', units: 3, activation: 'softmax' },
  ],
  compile: { optimizer: { type: 'adam', learningRate: 0.05 }, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
};

export function classifierModel(seed = 7): Model {
  return Model.fromSpec(classifierSpec, { seed });
}

/** A CSV with four features and a class label, 12 rows. */
export function irisLikeCsv(): string {
  const rows = ['sepal_length,sepal_width,petal_length,petal_width,label'];
  for (let index = 0; index < 12; index++) {
    rows.push(`${(5 + index * 0.1).toFixed(1)},${(3 + (index % 3) * 0.2).toFixed(1)},${(1.4 + index * 0.3).toFixed(1)},${(0.2 + (index % 4) * 0.4).toFixed(1)},${index % 3}`);
  }
  return `${rows.join('\n')}\n`;
}

/** Uploads a model's .onnx as a new version of `name` (creating the model). */
export async function uploadOnnxModel(server: TestServer, key: string, name: string, onnx: Uint8Array): Promise<LightMyRequestResponse> {
  const created = await call(server.app, key, 'POST', '/api/v1/models', { name });
  if (created.statusCode !== 201 && created.statusCode !== 409) throw new Error(`model create failed: ${created.body}`);
  return call(server.app, key, 'POST', `/api/v1/models/${name}/versions`, Buffer.from(onnx), { 'content-type': 'application/octet-stream' });
}

/**
 * A language-model runtime that forwards everything to `runtime` but streams through `stream`: for
 * tests that hold or pace a generation. (Spreading the runtime alone would lose its class methods.)
 */
export function withStream(runtime: LanguageModelRuntime, stream: LanguageModelRuntime['stream']): LanguageModelRuntime {
  return {
    ...runtime,
    specificationVersion: 'v1',
    info: () => runtime.info(),
    countTokens: (text) => runtime.countTokens(text),
    generate: (request, signal) => runtime.generate(request, signal),
    load: () => runtime.load(),
    memoryBytes: () => runtime.memoryBytes(),
    embed: (inputs, signal) => runtime.embed(inputs, signal),
    dispose: () => runtime.dispose(),
    stream,
  };
}
