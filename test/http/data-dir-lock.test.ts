import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { createServerContext } from '../../src/startup/context.ts';
import { captureIo } from '../cli/helpers.ts';
import { startTestServer, type TestServer } from './helpers.ts';

const servers: TestServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function fresh(): Promise<TestServer> {
  const server = await startTestServer();
  servers.push(server);
  return server;
}

const lockModule = fileURLToPath(new URL('../../src/startup/data-dir-lock.ts', import.meta.url));

describe('one server per data directory', () => {
  it('refuses a second server on a data dir in use, naming the pid, and frees it on close', async () => {
    const server = await fresh();
    const second = createServerContext(server.config, { logger: pino({ level: 'silent' }) });
    await expect(second).rejects.toMatchObject({ code: 'DATA_DIR_LOCKED' });
    await expect(second).rejects.toThrow(new RegExp(`in use by process ${process.pid} \\(serve\\)`));
    // The refused start touched nothing the running server uses.
    expect((await server.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);

    await server.app.close();
    await server.context.close();
    const next = await createServerContext(server.config, { logger: pino({ level: 'silent' }), usageFlushIntervalMs: 0 });
    await next.close();
  });

  it('refuses aiaas admin rotate-master-key beside a running server', async () => {
    const server = await fresh();
    const io = captureIo({ env: { AIAAS_MASTER_KEY: server.config.masterKey! } });
    const code = await main(['admin', 'rotate-master-key', '--data-dir', server.dataDir, '--new-key', 'A'.repeat(43) + '='], io);
    expect(code).not.toBe(0);
    expect(io.err()).toMatch(/DATA_DIR_LOCKED/);
    expect(io.err()).toMatch(new RegExp(`process ${process.pid}`));
  });

  it('sees a lock held by another process, and the kernel frees it when that process is killed', async () => {
    const server = await fresh();
    await server.app.close();
    await server.context.close();
    const holder = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', `const { lockDataDir } = await import(${JSON.stringify(lockModule)}); lockDataDir(${JSON.stringify(server.dataDir)}, 'serve'); console.log('locked'); setInterval(() => {}, 1000);`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = once(holder, 'exit');
    try {
      // A child that fails to start must fail the test, not hang it.
      const started = await Promise.race([
        once(holder.stdout!, 'data').then(([chunk]) => String(chunk)),
        exited.then(([code]) => `exited with ${String(code)}`),
      ]);
      expect(started).toContain('locked');
      await expect(createServerContext(server.config, { logger: pino({ level: 'silent' }) })).rejects.toThrow(new RegExp(`in use by process ${holder.pid}`));
    } finally {
      holder.kill('SIGKILL');
      await exited;
    }
    const next = await createServerContext(server.config, { logger: pino({ level: 'silent' }), usageFlushIntervalMs: 0 });
    await next.close();
  });
});
