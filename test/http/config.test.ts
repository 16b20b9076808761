import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { configurationTable, loadConfig, redactConfig, settingDefinitions } from '../../src/config.ts';
import { buildApp } from '../../src/http/app.ts';
import { generateMasterKey } from '../../src/security/key-ring.ts';
import { createServerContext } from '../../src/startup/context.ts';
import { call } from './helpers.ts';

const directories: string[] = [];
afterEach(async () => {
  for (const directory of directories.splice(0)) await rm(directory, { recursive: true, force: true });
});
async function temporaryDirectory(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'aiaas-config-'));
  directories.push(directory);
  return directory;
}
const silent = pino({ level: 'silent' });

describe('loadConfig', () => {
  it('has documented defaults', () => {
    const config = loadConfig({ env: {}, cwd: '/srv' });
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      dataDir: '/srv/aiaas-data',
      databasePath: '/srv/aiaas-data/aiaas.db',
      bodyLimitBytes: 64 * 1024 * 1024,
      inferenceBodyLimitBytes: 8 * 1024 * 1024,
      jobConcurrency: 1,
      batchMaxSize: 64,
      batchMaxQueueSize: 1024,
      warmup: true,
      insecureDev: false,
      masterKey: undefined,
    });
  });

  it('resolves flags > environment > config file > defaults', async () => {
    const directory = await temporaryDirectory();
    const file = join(directory, 'config.json');
    await writeFile(file, JSON.stringify({ port: 1111, host: '0.0.0.0', rateLimitBurst: 7, warmup: false }));
    const config = loadConfig({
      flags: { port: 3333, config: file },
      env: { AIAAS_PORT: '2222', AIAAS_HOST: '10.0.0.1' },
      cwd: directory,
    });
    expect(config).toMatchObject({ port: 3333, host: '10.0.0.1', rateLimitBurst: 7, warmup: false });
    expect(loadConfig({ env: { AIAAS_CONFIG: file, AIAAS_PORT: '2222' } }).port).toBe(2222);
    expect(loadConfig({ configFile: file, env: {} }).port).toBe(1111);
    expect(loadConfig({ flags: { 'data-dir': 'x', 'insecure-dev': true }, env: {}, cwd: '/a' })).toMatchObject({ dataDir: '/a/x', insecureDev: true });
  });

  it('names both the flag and the environment variable in errors', () => {
    expect(() => loadConfig({ env: { AIAAS_PORT: 'abc' } })).toThrow(/--port \/ AIAAS_PORT.*expected an integer/);
    expect(() => loadConfig({ flags: { 'rate-limit-burst': 0 }, env: {} })).toThrow(/--rate-limit-burst \/ AIAAS_RATE_LIMIT_BURST.*at least 1/);
    expect(() => loadConfig({ env: { AIAAS_LOG_LEVEL: 'loud' } })).toThrow(/--log-level \/ AIAAS_LOG_LEVEL/);
    expect(() => loadConfig({ env: { AIAAS_BOOTSTRAP_KEY: 'short' } })).toThrow(/--bootstrap-key \/ AIAAS_BOOTSTRAP_KEY.*32 characters/);
    expect(() => loadConfig({ env: { AIAAS_TLS_CERT: 'cert.pem' } })).toThrow(/tlsKey/);
    expect(() => loadConfig({ flags: { colour: 'red' }, env: {} })).toThrow(/Unknown flag --colour/);
  });

  it('refuses unknown keys and bad JSON in the config file', async () => {
    const directory = await temporaryDirectory();
    const file = join(directory, 'config.json');
    await writeFile(file, JSON.stringify({ prot: 1 }));
    expect(() => loadConfig({ configFile: file, env: {} })).toThrow(/Unknown setting "prot"/);
    await writeFile(file, '{ nope');
    expect(() => loadConfig({ configFile: file, env: {} })).toThrow(/not valid JSON/);
  });

  it('redacts secrets for logging', () => {
    const config = loadConfig({ env: { AIAAS_MASTER_KEY: generateMasterKey(), AIAAS_SERVER_SECRET: 's'.repeat(40) } });
    const redacted = JSON.stringify(redactConfig(config));
    expect(redacted).not.toContain(config.masterKey);
    expect(redacted).not.toContain('s'.repeat(40));
  });

  it('matches the table in docs/configuration.md', async () => {
    const document = await readFile(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(document).toContain(configurationTable());
    for (const definition of settingDefinitions) expect(document).toContain(definition.env);
  });
});

describe('createServerContext', () => {
  it('refuses to start without a master key, saying how to make one', async () => {
    const dataDir = await temporaryDirectory();
    const config = loadConfig({ flags: { dataDir }, env: {} });
    const failure = createServerContext(config, { logger: silent });
    await expect(failure).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(failure).rejects.toThrow(/AIAAS_MASTER_KEY.*--insecure-dev/s);
  });

  it('in insecure-dev mode keeps one generated master key (0600) and a server secret (0600) across restarts', async () => {
    const dataDir = await temporaryDirectory();
    const config = loadConfig({ flags: { dataDir, insecureDev: true }, env: {} });
    const first = await createServerContext(config, { logger: silent });
    const generatedKey = first.bootstrap.generatedKey!;
    await first.close();
    for (const name of ['insecure-dev-master-key', 'server-secret']) {
      expect((await stat(join(dataDir, name))).mode & 0o777).toBe(0o600);
    }
    const masterKey = await readFile(join(dataDir, 'insecure-dev-master-key'), 'utf8');
    const second = await createServerContext(config, { logger: silent });
    try {
      expect(second.bootstrap.generatedKey).toBeUndefined();
      expect(await readFile(join(dataDir, 'insecure-dev-master-key'), 'utf8')).toBe(masterKey);
      // The same key still authenticates: same server secret.
      expect((await second.access.authenticate(generatedKey)).principal.role).toBe('admin');
    } finally {
      await second.close();
    }
  });

  it('uses AIAAS_BOOTSTRAP_KEY as the first admin key of the first tenant', async () => {
    const dataDir = await temporaryDirectory();
    const bootstrapKey = 'correct-horse-battery-staple-0123456789';
    const config = loadConfig({ flags: { dataDir }, env: { AIAAS_MASTER_KEY: generateMasterKey(), AIAAS_BOOTSTRAP_KEY: bootstrapKey, AIAAS_LOG_LEVEL: 'silent' } });
    const context = await createServerContext(config, { logger: silent });
    const app = await buildApp(context);
    try {
      expect(context.bootstrap.generatedKey).toBeUndefined();
      const me = await call(app, bootstrapKey, 'GET', '/api/v1/me');
      expect(me.statusCode).toBe(200);
      expect(me.json()).toMatchObject({ tenant: { name: 'default', operator: true }, key: { role: 'admin', prefix: 'corr…' } });
    } finally {
      await app.close();
      await context.close();
    }
  });
});
