/**
 * Pull jobs through the server: `POST /api/v1/models/:name/versions` with a JSON body, the job's
 * events, cancel, limits and allow-lists, and Ollama's `/api/pull` / `/api/delete` over the same
 * jobs. Files come from a local HTTP server (127.0.0.1, allowed explicitly) that serves an ONNX
 * model the test generated.
 */
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { createOllamaModelAdmin } from '../../src/http/protocols/ollama-model-admin.ts';
import { ollamaRoutes } from '../../src/http/routes/ollama.ts';
import type { AppContext } from '../../src/http/app.ts';
import { startFileServer, type FileServer } from '../platform/file-server.ts';
import { call, finalJob, type JobBody, classifierModel, createKey, startTestServer, type TestServer } from './helpers.ts';

const onnx = classifierModel(5).exportOnnx();
const onnxSha256 = createHash('sha256').update(onnx).digest('hex');

/**
 * Ollama's routes as the composition root will mount them, here under /api/v1 (the test app's
 * extension point), on a server that has no language models: only pull and delete are exercised.
 */
const ollamaUnderTest: FastifyPluginAsync<{ context: AppContext }> = async (app, { context }) => {
  const none = async (): Promise<never> => {
    throw new AiaasError('MODEL_NOT_FOUND', 'this server has no language models');
  };
  await app.register(ollamaRoutes, {
    resolve: none,
    list: async () => [],
    open: none,
    loaded: async () => [],
    limits: () => ({ defaultMaxTokens: 16, maxTokens: 16, maxContextLength: 16 }),
    admin: createOllamaModelAdmin({ jobs: context.jobs.service, registry: context.registry, pollMs: 50 }),
  });
};

let server: TestServer;
let files: FileServer;
let flaky: FileServer;

beforeAll(async () => {
  files = await startFileServer(onnx);
  flaky = await startFileServer(onnx);
  server = await startTestServer({ pullAllowedHosts: '127.0.0.1', maxConcurrentJobsPerTenant: 1 }, {}, { extraRoutes: ollamaUnderTest });
  server.context.jobs.start();
});

afterAll(async () => {
  await server?.close();
  await files?.close();
  await flaky?.close();
});

async function pull(name: string, body: unknown, key = server.adminKey) {
  return call(server.app, key, 'POST', `/api/v1/models/${name}/versions`, JSON.stringify(body), { 'content-type': 'application/json' });
}

const finalPull = (id: string): Promise<JobBody> => finalJob<JobBody>(server, server.adminKey, id);

/** The job's whole SSE stream (it ends once the job is final). */
async function events(id: string): Promise<{ type: string; data: Record<string, unknown> }[]> {
  const response = await call(server.app, server.adminKey, 'GET', `/api/v1/jobs/${id}/events`);
  expect(response.headers['content-type']).toContain('text/event-stream');
  return response.body
    .split('\n\n')
    .filter((block) => block.includes('event: '))
    .map((block) => ({ type: /event: (.*)/.exec(block)![1]!, data: JSON.parse(/data: (.*)/.exec(block)![1]!) as Record<string, unknown> }));
}

async function pullsDirectory(): Promise<string[]> {
  return readdir(join(server.dataDir, 'pulls'));
}

describe('POST /api/v1/models/:name/versions with {"url", "sha256"}', () => {
  it('answers 202 with a pull job that downloads, verifies and registers the file as a version', async () => {
    const submitted = await pull('pulled', { url: `${files.origin}/file`, sha256: onnxSha256 });
    expect(submitted.statusCode).toBe(202);
    const job = submitted.json().job as JobBody;
    expect(submitted.headers.location).toBe(`/api/v1/jobs/${job.id}`);
    expect(job).toMatchObject({ kind: 'pull', status: 'queued' });

    const done = await finalPull(job.id);
    expect(done).toMatchObject({ status: 'succeeded', resultVersion: { version: 1 } });
    const versions = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/pulled/versions')).json().versions;
    expect(versions).toHaveLength(1);
    expect(versions[0]).toMatchObject({ version: 1, source: 'job', jobId: job.id });
    const file = await call(server.app, server.adminKey, 'GET', '/api/v1/models/pulled/versions/1/files/model.onnx');
    expect(createHash('sha256').update(file.rawPayload).digest('hex')).toBe(onnxSha256);
    // The pulled model serves like an uploaded one.
    const inferred = await call(server.app, server.adminKey, 'POST', '/v2/models/pulled/infer', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5, 3, 1.4, 0.2] }] });
    expect(inferred.statusCode).toBe(200);

    const stream = await events(job.id);
    expect(stream.map((event) => event.type)).toEqual(expect.arrayContaining(['job-queued', 'job-started', 'job-progress', 'job-finished']));
    const downloading = stream.filter((event) => event.type === 'job-progress' && event.data.phase === 'downloading');
    expect(downloading.at(-1)!.data).toEqual({ phase: 'downloading', bytesDone: onnx.byteLength, bytesTotal: onnx.byteLength });
    expect(stream.at(-1)).toEqual({ type: 'job-finished', data: { status: 'succeeded', version: 1, versionId: versions[0].id, bytes: onnx.byteLength, sha256: onnxSha256, resumes: 0 } });
    expect(await pullsDirectory()).toEqual([]);
  });

  it('fails the job on a sha256 mismatch and registers nothing', async () => {
    const submitted = await pull('mismatched', { url: `${files.origin}/file`, sha256: 'ab'.repeat(32) });
    expect(submitted.statusCode).toBe(202);
    const done = await finalPull(submitted.json().job.id);
    expect(done.status).toBe('failed');
    expect(done.error).toMatchObject({ code: 'PULL_HASH_MISMATCH' });
    expect(done.error!.message).toContain(onnxSha256);
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models/mismatched')).statusCode).toBe(404);
    expect(await pullsDirectory()).toEqual([]);
  });

  it('resumes a download whose connection dropped mid-body', async () => {
    const submitted = await pull('resumed', { url: `${flaky.origin}/drop-once`, sha256: onnxSha256 });
    const done = await finalPull(submitted.json().job.id);
    expect(done.status).toBe('succeeded');
    const stream = await events(done.id);
    const resumed = stream.filter((event) => event.type === 'download-resumed');
    expect(resumed).toHaveLength(1);
    expect(flaky.requests.filter((request) => request.path === '/drop-once').map((request) => request.range)).toEqual([undefined, `bytes=${resumed[0]!.data.fromByte}-`]);
    expect(stream.at(-1)!.data).toMatchObject({ status: 'succeeded', sha256: onnxSha256, resumes: 1 });
  });

  it('cancels a download in progress: the connection closes, the partial file goes, nothing is registered', async () => {
    const submitted = await pull('cancelled', { url: `${files.origin}/hang` });
    const id = submitted.json().job.id as string;
    await files.hanging;
    // While it runs, the tenant's one unfinished job is used up (the limit covers every kind).
    const second = await pull('another', { url: `${files.origin}/file` });
    expect(second.statusCode).toBe(429);
    expect(second.json().error.code).toBe('QUOTA_EXCEEDED');

    const cancelled = await call(server.app, server.adminKey, 'POST', `/api/v1/jobs/${id}/cancel`);
    expect(cancelled.statusCode).toBe(202);
    expect((await finalPull(id)).status).toBe('cancelled');
    await files.hangClosed;
    expect(await pullsDirectory()).toEqual([]);
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models/cancelled')).statusCode).toBe(404);
    expect((await events(id)).at(-1)).toEqual({ type: 'job-finished', data: { status: 'cancelled' } });
  });

  it('refuses sources outside the pull policy at submission (403), before any job exists', async () => {
    const privateAddress = await pull('refused', { url: 'http://10.0.0.1/model.onnx' });
    expect(privateAddress.statusCode).toBe(403);
    expect(privateAddress.json().error).toMatchObject({ code: 'PULL_SOURCE_REFUSED', details: { reason: 'private-address' } });
    const unlisted = await pull('refused', { url: 'hf://org/repo/model.gguf' });
    expect(unlisted.statusCode).toBe(403);
    expect(unlisted.json().error).toMatchObject({ code: 'PULL_SOURCE_REFUSED', details: { reason: 'host-not-allowed', host: 'huggingface.co' } });
    const badHash = await pull('refused', { url: `${files.origin}/file`, sha256: 'xyz' });
    expect(badHash.statusCode).toBe(400);
    const jobs = (await call(server.app, server.adminKey, 'GET', '/api/v1/jobs?kind=pull')).json().jobs as JobBody[];
    expect(jobs.every((job) => job.kind === 'pull')).toBe(true);
    expect(jobs.some((job) => (job as unknown as { model: string }).model === 'refused')).toBe(false);
  });

  it("applies the key's allowedModels and role to pulls, their job reads and their events", async () => {
    const restricted = await createKey(server, server.adminKey, 'developer', { allowedModels: ['other'] });
    expect((await pull('pulled', { url: `${files.origin}/file` }, restricted.key)).statusCode).toBe(404);
    const visible = (await call(server.app, restricted.key, 'GET', '/api/v1/jobs')).json().jobs as JobBody[];
    expect(visible).toEqual([]);
    const someone = (await call(server.app, server.adminKey, 'GET', '/api/v1/jobs?kind=pull&status=succeeded')).json().jobs[0] as JobBody;
    expect((await call(server.app, restricted.key, 'GET', `/api/v1/jobs/${someone.id}`)).statusCode).toBe(404);
    expect((await call(server.app, restricted.key, 'GET', `/api/v1/jobs/${someone.id}/events`)).statusCode).toBe(404);
    expect((await call(server.app, restricted.key, 'POST', `/api/v1/jobs/${someone.id}/cancel`)).statusCode).toBe(404);
    const viewer = await createKey(server, server.adminKey, 'viewer');
    expect((await pull('pulled', { url: `${files.origin}/file` }, viewer.key)).statusCode).toBe(403);
  });

  it('takes pulls on POST /api/v1/jobs with kind "pull" too, and refuses unknown kinds', async () => {
    const submitted = await call(server.app, server.adminKey, 'POST', '/api/v1/jobs', { kind: 'pull', model: 'via-jobs', url: `${files.origin}/file`, sha256: onnxSha256 });
    expect(submitted.statusCode).toBe(202);
    expect((await finalPull(submitted.json().job.id)).status).toBe('succeeded');
    const unknown = await call(server.app, server.adminKey, 'POST', '/api/v1/jobs', { kind: 'quantize', model: 'x' });
    expect(unknown.statusCode).toBe(400);
    // Refused by the request schema (a union of the kinds), before the service sees it.
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/jobs')).json().jobs.some((job: { model: string }) => job.model === 'x')).toBe(false);
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/jobs?kind=nonsense')).statusCode).toBe(400);
  });
});

describe("Ollama's /api/pull and /api/delete", () => {
  const ollama = (path: string) => `/api/v1/api/${path}`;
  /** Not `call`: Ollama's routes answer in Ollama's shapes, outside the /api/v1 schema contract. */
  const callOllama = (key: string, method: 'POST' | 'DELETE', url: string, body: unknown) =>
    server.app.inject({ method, url, headers: { authorization: `Bearer ${key}` }, payload: body as object });

  it('streams progress objects until success, and the tag becomes an alias', async () => {
    const response = await callOllama(server.adminKey, 'POST', ollama('pull'), { model: 'llama:fresh', url: `${files.origin}/file`, sha256: onnxSha256 });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('application/x-ndjson');
    const lines = response.body.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines[0]).toEqual({ status: 'pulling manifest' });
    const downloading = lines.filter((line) => typeof line.completed === 'number');
    expect(downloading.at(-1)).toEqual({ status: `pulling ${onnxSha256.slice(0, 12)}`, digest: `sha256:${onnxSha256}`, total: onnx.byteLength, completed: onnx.byteLength });
    expect(lines.slice(-3)).toEqual([{ status: 'verifying sha256 digest' }, { status: 'writing manifest' }, { status: 'success' }]);
    const aliases = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/llama/aliases')).json().aliases;
    expect(aliases).toMatchObject([{ name: 'fresh', version: 1 }]);
  });

  it('reports a failed pull as an error line, with stream false as an error status', async () => {
    const streamed = await callOllama(server.adminKey, 'POST', ollama('pull'), { model: 'llama', url: `${files.origin}/file`, sha256: 'cd'.repeat(32) });
    const lines = streamed.body.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.at(-1)!.error).toContain(`not the expected ${'cd'.repeat(32)}`);
    const whole = await callOllama(server.adminKey, 'POST', ollama('pull'), { model: 'llama', url: `${files.origin}/missing`, stream: false });
    expect(whole.statusCode).toBe(502);
    expect(whole.json()).toEqual({ error: expect.stringContaining('404') });
  });

  it('needs models:write for pull and delete, and respects allowedModels', async () => {
    const viewer = await createKey(server, server.adminKey, 'viewer');
    const pulled = await callOllama(viewer.key, 'POST', ollama('pull'), { model: 'llama', url: `${files.origin}/file` });
    expect(pulled.statusCode).toBe(403);
    expect(pulled.json()).toEqual({ error: expect.any(String) });
    expect((await callOllama(viewer.key, 'DELETE', ollama('delete'), { model: 'llama:fresh' })).statusCode).toBe(403);
    const restricted = await createKey(server, server.adminKey, 'developer', { allowedModels: ['other'] });
    expect((await callOllama(restricted.key, 'DELETE', ollama('delete'), { model: 'llama:fresh' })).statusCode).toBe(404);
  });

  it('deletes a tag (alias), a version, then the model', async () => {
    expect((await callOllama(server.adminKey, 'DELETE', ollama('delete'), { model: 'llama:fresh' })).statusCode).toBe(200);
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models/llama/aliases')).json().aliases).toEqual([]);
    expect((await callOllama(server.adminKey, 'DELETE', ollama('delete'), { model: 'llama:1' })).statusCode).toBe(200);
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models/llama')).json().versions).toEqual([]);
    expect((await callOllama(server.adminKey, 'DELETE', ollama('delete'), { model: 'llama' })).statusCode).toBe(200);
    const missing = await callOllama(server.adminKey, 'DELETE', ollama('delete'), { model: 'llama' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: "model 'llama' not found" });
  });
});
