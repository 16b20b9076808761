import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { forkIsolated, residentBytes } from '../../src/runtimes/isolated-process.ts';
import type { EchoReply, EchoRequest } from './fixtures/echo-child.ts';

const echoChild = new URL('./fixtures/echo-child.ts', import.meta.url);
const mebibyte = 1024 * 1024;

/** Whether a process exists and is not a zombie waiting to be reaped. */
async function alive(pid: number): Promise<boolean> {
  try {
    return !/^State:\s+Z/m.test(await readFile(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

describe('forkIsolated', () => {
  it('delivers messages in order with their bytes intact, payloads carried beside the IPC channel', async () => {
    const child = forkIsolated<EchoRequest, EchoReply>(echoChild, { memoryLimitBytes: 1024 * mebibyte });
    const replies: EchoReply[] = [];
    const all = new Promise<void>((resolve) =>
      child.onMessage((message) => {
        replies.push(message);
        if (replies.length === 4) resolve();
      }),
    );
    const large = new Uint8Array(8 * mebibyte).map((_, index) => index % 251);
    const small = Uint8Array.of(1, 2, 3);
    child.send({ type: 'echo', sequence: 1, payload: { bytes: large, nested: [small, new Uint8Array(0)] } });
    child.send({ type: 'echo', sequence: 2, value: Number.NaN });
    child.send({ type: 'echo', sequence: 3, payload: { bytes: small, nested: [] } });
    child.send({ type: 'echo', sequence: 4, value: -0 });
    await all;
    child.kill();
    const expectedLargeSum = large.reduce((total, byte) => total + byte, 0);
    expect(replies.map((reply) => (reply.type === 'echoed' ? reply.sequence : -1))).toEqual([1, 2, 3, 4]);
    expect(replies[0]).toMatchObject({ sums: [expectedLargeSum, 6, 0], lengths: [large.byteLength, 3, 0] });
    const back = (replies[0] as { back: Uint8Array }).back;
    expect(back).toBeInstanceOf(Uint8Array);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(large))).toBe(0);
    // Advanced serialization: what worker threads kept (NaN, -0) survives the process boundary too.
    expect((replies[1] as { value: number }).value).toBeNaN();
    expect(Object.is((replies[3] as { value: number }).value, -0)).toBe(true);
    expect((await child.exited).limit).toBeUndefined();
  });

  it("gives the child none of the server's AIAAS_* settings, secrets included", async () => {
    process.env.AIAAS_MASTER_KEY = 'not-for-children';
    let child: ReturnType<typeof forkIsolated<EchoRequest, EchoReply>>;
    try {
      child = forkIsolated<EchoRequest, EchoReply>(echoChild, { memoryLimitBytes: 1024 * mebibyte });
    } finally {
      delete process.env.AIAAS_MASTER_KEY;
    }
    const reply = await new Promise<EchoReply>((resolve) => {
      child.onMessage(resolve);
      child.send({ type: 'environment' });
    });
    child.kill();
    expect(reply.type).toBe('environment');
    const names = (reply as { names: string[] }).names;
    expect(names).toContain('PATH');
    expect(names.filter((name) => name.startsWith('AIAAS_'))).toEqual([]);
  });

  it.skipIf(process.platform !== 'linux')('kills a child whose resident memory crosses the limit and says so', async () => {
    const child = forkIsolated<EchoRequest, EchoReply>(echoChild, { memoryLimitBytes: 256 * mebibyte, memoryPollMs: 10 });
    child.send({ type: 'grow' });
    const exit = await child.exited;
    expect(exit).toMatchObject({ limit: 'memory', signal: 'SIGKILL' });
    expect(exit.peakResidentBytes).toBeGreaterThan(256 * mebibyte);
  });

  it('kills a child that outlives its time limit', async () => {
    const child = forkIsolated<EchoRequest, EchoReply>(echoChild, { memoryLimitBytes: 1024 * mebibyte, timeoutMs: 1500 });
    child.send({ type: 'hang' });
    expect(await child.exited).toMatchObject({ limit: 'time', signal: 'SIGKILL' });
  });

  it.skipIf(process.platform !== 'linux')('leaves no child behind when its parent is SIGKILLed', async () => {
    const middle = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/middle-parent.ts', import.meta.url))], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
    });
    const childPid = await new Promise<number>((resolve) => {
      let output = '';
      middle.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('\n')) resolve(Number(output.trim()));
      });
    });
    expect(await residentBytes(childPid)).toBeGreaterThan(0);
    middle.kill('SIGKILL');
    // The child notices the closed IPC channel and exits; the test times out if it never does.
    while (await alive(childPid)) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await alive(childPid)).toBe(false);
  });
});
