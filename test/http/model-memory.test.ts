/**
 * Measured model memory, end to end: an upload stores the memory its validation child measured and
 * the version JSON shows it; a model over the child's RSS cap answers 400 at upload, and a version
 * stored before measuring is measured at its first load (503 when it crosses the cap there).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { buildApp } from '../../src/http/app.ts';
import { generateMasterKey } from '../../src/security/key-ring.ts';
import { createServerContext, type ServerContext } from '../../src/startup/context.ts';
import { weightsModel } from '../inference/fixtures/tiny-onnx.ts';
import { call } from './helpers.ts';

const mebibyte = 1024 ** 2;
const octets = { 'content-type': 'application/octet-stream' };
// 16 MiB of weights: a child with Node and ONNX Runtime loaded (about 90 MB) stays under 160 MiB.
const small = Buffer.from(weightsModel(1024, 4096));
// 96 MiB of weights: over 160 MiB once opened.
const large = Buffer.from(weightsModel(3072, 8192));

let dataDir: string;
const masterKey = generateMasterKey();

async function start(validationMemoryBytes: number, bootstrapKey: string): Promise<{ app: FastifyInstance; context: ServerContext; close(): Promise<void> }> {
  const config = loadConfig({ flags: { dataDir, masterKey, bootstrapKey, logLevel: 'silent', warmup: false, validationMemoryBytes }, env: {} });
  const context = await createServerContext(config, { logger: pino({ level: 'silent' }), usageFlushIntervalMs: 0 });
  const app = await buildApp(context);
  return { app, context, close: async () => (await app.close(), await context.close()) };
}

const adminKey = `aiaas_${'k'.repeat(40)}`;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'aiaas-memory-'));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe.skipIf(process.platform !== 'linux')('measured model memory', () => {
  it('stores the memory measured at upload in the version; a model over the validation cap answers 400 naming the limit', async () => {
    const server = await start(160 * mebibyte, adminKey);
    try {
      expect((await call(server.app, adminKey, 'POST', '/api/v1/models', { name: 'small' })).statusCode).toBe(201);
      expect((await call(server.app, adminKey, 'POST', '/api/v1/models', { name: 'large' })).statusCode).toBe(201);
      const uploaded = await call(server.app, adminKey, 'POST', '/api/v1/models/small/versions', small, octets);
      expect(uploaded.statusCode, uploaded.body).toBe(201);
      const measured = uploaded.json().version.measuredMemoryBytes as number;
      // At least the 16 MiB of weights, at most a few times them.
      expect(measured).toBeGreaterThanOrEqual(16 * mebibyte * 0.9);
      expect(measured).toBeLessThan(16 * mebibyte * 4);
      const version = await call(server.app, adminKey, 'GET', '/api/v1/models/small/versions/1');
      expect(version.json().measuredMemoryBytes).toBe(measured);

      const refused = await call(server.app, adminKey, 'POST', '/api/v1/models/large/versions', large, octets);
      expect(refused.statusCode).toBe(400);
      expect(refused.json()).toMatchObject({ error: { code: 'INVALID_MODEL_FILE', message: expect.stringMatching(/exceeded the validation memory limit of 160 MiB \(validationMemoryBytes\)/) } });
    } finally {
      await server.close();
    }
  });

  it('measures a version stored before measuring at its first load, and refuses the load (503) of one over the cap', async () => {
    let server = await start(2048 * mebibyte, adminKey);
    try {
      for (const [name, bytes] of [['legacy-small', small], ['legacy-large', large]] as const) {
        expect((await call(server.app, adminKey, 'POST', '/api/v1/models', { name })).statusCode).toBe(201);
        const uploaded = await call(server.app, adminKey, 'POST', `/api/v1/models/${name}/versions`, bytes, octets);
        expect(uploaded.statusCode, uploaded.body).toBe(201);
      }
      // As a server from before 0003_model_memory left them.
      await server.context.database.db.updateTable('model_versions').set({ measured_memory_bytes: null }).execute();
    } finally {
      await server.close();
    }
    server = await start(160 * mebibyte, adminKey);
    try {
      expect((await call(server.app, adminKey, 'GET', '/api/v1/models/legacy-small/versions/1')).json().measuredMemoryBytes).toBeNull();
      const input = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1024], data: new Array(1024).fill(1) }] };
      const served = await call(server.app, adminKey, 'POST', '/v2/models/legacy-small/infer', input);
      expect(served.statusCode, served.body).toBe(200);
      expect(served.json().outputs[0].data[0]).toBeCloseTo(1.024, 4);
      const measured = (await call(server.app, adminKey, 'GET', '/api/v1/models/legacy-small/versions/1')).json().measuredMemoryBytes as number;
      expect(measured).toBeGreaterThanOrEqual(16 * mebibyte * 0.9);
      // The budget counts the measurement (× 1 instance), not the file's size.
      expect(server.context.manager.loaded().find((entry) => entry.key.name === 'legacy-small')?.memoryBytes).toBe(measured);

      const largeInput = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3072], data: new Array(3072).fill(1) }] };
      const refused = await call(server.app, adminKey, 'POST', '/v2/models/legacy-large/infer', largeInput);
      expect(refused.statusCode).toBe(503);
      expect(refused.json().error).toMatch(/exceeded the validation memory limit of 160 MiB/);
      expect(server.context.manager.isLoaded((await server.context.registry.resolve(server.context.bootstrap.tenantId, 'legacy-large')).versionId)).toBe(false);
    } finally {
      await server.close();
    }
  });
});
