import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { generateMasterKey } from '../../src/security/key-ring.ts';
import { startServer, type RunningServer } from '../../src/startup/start.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function dataDirectory(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'aiaas-start-'));
  cleanups.push(() => rm(directory, { recursive: true, force: true }));
  return directory;
}

async function start(flags: Record<string, string | number | boolean>, printed: string[] = []): Promise<RunningServer> {
  const config = loadConfig({ flags: { port: 0, logLevel: 'silent', ...flags }, env: {} });
  const server = await startServer(config, { handleSignals: false, logger: pino({ level: 'silent' }), printSecret: (text) => printed.push(text) });
  cleanups.push(() => server.close());
  return server;
}

describe('startServer', () => {
  // Startup time is measured by hand (README: ≈0.9 s from dist), not asserted: tests never depend on wall-clock speed.
  it('starts on an empty data dir, prints the bootstrap key once, serves over a socket', async () => {
    const dataDir = await dataDirectory();
    const masterKey = generateMasterKey();
    const printed: string[] = [];
    const server = await start({ dataDir, masterKey }, printed);
    expect(server.startupMs).toBeGreaterThan(0);
    expect(printed).toHaveLength(1);
    const key = /aiaas_[0-9A-Za-z]{43}/.exec(printed[0]!)![0];
    const health = await fetch(`${server.url}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok' });
    expect(health.headers.get('x-request-id')).toBeTruthy();
    const me = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${key}`, 'x-request-id': 'trace-123' } });
    expect(me.status).toBe(200);
    expect(me.headers.get('x-request-id')).toBe('trace-123');
    const ready = await fetch(`${server.url}/readyz`);
    expect(await ready.json()).toEqual({ status: 'ready' });
    await server.close();

    const printedAgain: string[] = [];
    const again = await start({ dataDir, masterKey }, printedAgain);
    expect(printedAgain).toEqual([]);
    expect((await fetch(`${again.url}/api/v1/me`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
  });

  it('removes its signal handlers when closed', async () => {
    const before = [process.listenerCount('SIGTERM'), process.listenerCount('SIGINT')];
    const config = loadConfig({ flags: { port: 0, logLevel: 'silent', dataDir: await dataDirectory(), masterKey: generateMasterKey() }, env: {} });
    const server = await startServer(config, { logger: pino({ level: 'silent' }), printSecret: () => undefined });
    expect([process.listenerCount('SIGTERM'), process.listenerCount('SIGINT')]).toEqual([before[0]! + 1, before[1]! + 1]);
    await server.close();
    expect([process.listenerCount('SIGTERM'), process.listenerCount('SIGINT')]).toEqual(before);
  });

  it('speaks HTTPS with HSTS when a certificate is configured', async () => {
    const dataDir = await dataDirectory();
    const cert = join(dataDir, 'cert.pem');
    const keyFile = join(dataDir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    const server = await start({ dataDir, masterKey: generateMasterKey(), tlsCert: cert, tlsKey: keyFile });
    expect(server.url.startsWith('https://')).toBe(true);
    const headers = await new Promise<Record<string, string | string[] | undefined>>((resolve, reject) => {
      const outgoing = request(`${server.url}/healthz`, { rejectUnauthorized: false }, (response) => {
        response.resume();
        resolve(response.headers);
      });
      outgoing.on('error', reject);
      outgoing.end();
    });
    expect(headers['strict-transport-security']).toContain('max-age=');
  });
});
