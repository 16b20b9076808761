import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { createServerLogger, prettyLogLine } from '../../src/startup/logger.ts';
import { captureIo } from './helpers.ts';

function sink(isTTY: boolean): { stream: Writable & { isTTY?: boolean }; text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  }) as Writable & { isTTY?: boolean };
  if (isTTY) stream.isTTY = true;
  return { stream, text: () => chunks.join('') };
}

describe('server log format', () => {
  it('renders a pino line as time, level, message and fields', () => {
    const time = Date.UTC(2026, 10, 30, 12, 34, 56, 789);
    expect(prettyLogLine(JSON.stringify({ level: 30, time, pid: 1, hostname: 'h', msg: 'aiaas listening', url: 'http://127.0.0.1:8080', startupMs: 12.5 }))).toBe(
      '12:34:56.789 INFO  aiaas listening url=http://127.0.0.1:8080 startupMs=12.5\n',
    );
    expect(prettyLogLine(JSON.stringify({ level: 30, time, msg: 'request completed', reqId: 'req-1', res: { statusCode: 404 }, responseTime: 1.234 }))).toBe(
      '12:34:56.789 INFO  request completed reqId=req-1 status=404 1.2ms\n',
    );
    expect(prettyLogLine(JSON.stringify({ level: 40, time, msg: 'careful', path: '/a b' }), { colour: true })).toBe('12:34:56.789 \u001b[33mWARN \u001b[0m careful path="/a b"\n');
    expect(prettyLogLine('not json')).toBe('not json\n');
  });

  it('auto is pretty on a terminal and JSON otherwise; json and pretty force it', async () => {
    const write = (format: 'auto' | 'json' | 'pretty', isTTY: boolean) => {
      const target = sink(isTTY);
      createServerLogger({ logLevel: 'info', logFormat: format }, target.stream).info({ answer: 42 }, 'hello');
      return target.text();
    };
    expect(write('auto', true)).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  hello answer=42\n$/);
    expect(JSON.parse(write('auto', false))).toMatchObject({ level: 30, msg: 'hello', answer: 42 });
    expect(JSON.parse(write('json', true))).toMatchObject({ msg: 'hello' });
    expect(write('pretty', false)).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  hello answer=42\n$/);
  });

  it('aiaas serve --insecure-dev --log-format pretty: a plain warning on stderr, readable log lines on stdout', async () => {
    const dataDirectory = await mkdtemp(join(tmpdir(), 'aiaas-serve-logs-'));
    const io = captureIo({ env: {}, observe: true });
    const controller = new AbortController();
    const listening = new Promise<void>((resolve) => {
      const check = () => {
        if (io.err().includes('aiaas listening on')) {
          io.stderr.off('write-observed', check);
          resolve();
        }
      };
      io.stderr.on('write-observed', check);
    });
    try {
      const running = main(['serve', '--insecure-dev', '--port', '0', '--data-dir', dataDirectory, '--log-format', 'pretty', '--no-warmup'], io, { signal: controller.signal });
      await Promise.race([listening, running.then((code) => Promise.reject(new Error(`serve exited ${code}: ${io.err()}`)))]);
      controller.abort();
      expect(await running).toBe(0);
    } finally {
      await rm(dataDirectory, { recursive: true, force: true });
    }
    expect(io.err()).toMatch(/^WARNING: insecure-dev mode\. The master key is kept in .* next to the data it protects:\n/m);
    expect(io.out()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN  INSECURE DEV MODE: the master key is stored next to the data it protects\..* created=true\n/m);
    expect(io.out()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  aiaas listening url=http:\/\/127\.0\.0\.1:\d+/m);
    expect(io.out()).not.toContain('{"level"');
  });
});
