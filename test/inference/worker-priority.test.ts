import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonParsePool } from '../../src/http/protocols/json-offload.ts';
import { openOnnxInWorkers } from '../../src/runtimes/onnx/onnx-worker-runtime.ts';
import { linearModel } from './fixtures/tiny-onnx.ts';

/** Each thread of this process with its niceness, from /proc (field 19 of a task's stat). */
function threadNiceness(): Map<number, number> {
  const threads = new Map<number, number>();
  for (const task of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${task}/stat`, 'utf8');
      threads.set(Number(task), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      // the thread ended between listing and reading
    }
  }
  return threads;
}

const processNice = (): number => threadNiceness().get(process.pid) ?? 0;
const threadsAt = (nice: number): number[] => [...threadNiceness()].filter(([, value]) => value === nice).map(([thread]) => thread);

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'aiaas-priority-'));
  await writeFile(join(directory, 'linear.onnx'), linearModel());
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe.runIf(process.platform === 'linux')('worker thread priority', () => {
  it('runs each model instance at the niceness asked for above the main thread, and leaves the main thread as it was', async () => {
    const base = processNice();
    // A niceness no other thread of this test process has.
    const added = 7;
    expect(threadsAt(base + added)).toEqual([]);
    const runtime = await openOnnxInWorkers(join(directory, 'linear.onnx'), { instances: 2, intraOpThreads: 1, nice: added });
    let during = 0;
    try {
      // Each instance's thread, and whatever threads ONNX Runtime starts from them (which inherit it).
      expect(threadsAt(base + added).length).toBeGreaterThanOrEqual(2);
      expect(processNice()).toBe(base);
      during = threadsAt(base + added).length;
      const [output] = await runtime.infer([{ name: 'x', datatype: 'FP32', shape: [1, 3], data: new Float32Array([1, 2, 3]) }]);
      expect(output!.shape).toEqual([1, 2]);
    } finally {
      await runtime.dispose();
    }
    // The instances' threads are gone (a process-wide thread ORT started from one of them may stay).
    expect(threadsAt(base + added).length).toBeLessThanOrEqual(during - 2);
  });

  it('runs model instances at the main thread priority with nice 0', async () => {
    const before = new Set(threadNiceness().keys());
    const runtime = await openOnnxInWorkers(join(directory, 'linear.onnx'), { instances: 1, intraOpThreads: 1, nice: 0 });
    try {
      const added = [...threadNiceness()].filter(([thread]) => !before.has(thread));
      expect(added.length).toBeGreaterThan(0);
      expect(added.every(([, nice]) => nice === processNice())).toBe(true);
    } finally {
      await runtime.dispose();
    }
  });

  it('runs the parse threads at the niceness asked for', async () => {
    const base = processNice();
    const added = 6;
    const pool = new JsonParsePool({ threads: 2, nice: added });
    try {
      // Two bodies in one turn go to the two lanes, which starts both threads.
      const body = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }));
      const results = await Promise.all([pool.parse(body, { packTensors: true }), pool.parse(body, { packTensors: true })]);
      expect(results.every((result) => 'value' in result)).toBe(true);
      expect(threadsAt(base + added)).toHaveLength(2);
    } finally {
      await pool.close();
    }
  });
});
