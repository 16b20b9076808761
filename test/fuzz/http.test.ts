import { afterAll, beforeAll, expect, it } from 'vitest';
import { corpusInputs } from './formats.ts';
import { createHttpFuzzWorld, decodeHttpCase, finishHttpFuzz, replayHttpCase, runHttpFuzz, type HttpFuzzWorld } from './http-fuzzer.ts';
import { Random } from './random.ts';

/** Bounded for `npm test`; `npm run fuzz -- --minutes N` runs the same generator for longer. */
const cases = 400;
const seed = 20261129;

let world: HttpFuzzWorld;
beforeAll(async () => {
  world = await createHttpFuzzWorld();
});
afterAll(async () => world.server.close());

it('replays the corpus of requests that once failed (corpus/http/)', async () => {
  const problems: string[] = [];
  for (const { file, bytes } of corpusInputs('http')) {
    const problem = await replayHttpCase(world, decodeHttpCase(world, bytes));
    if (problem !== undefined) problems.push(`${file}: ${problem}`);
  }
  expect(problems).toEqual([]);
});

it(`${cases} mutated requests derived from /openapi.json: no 500, catalogued error shapes, server alive, stored data unchanged`, async () => {
  expect(world.operations.length).toBeGreaterThan(50);
  const stats = await runHttpFuzz(world, new Random(seed), { count: cases });
  const failures = [...stats.failures, ...(await finishHttpFuzz(world))];
  expect(failures).toEqual([]);
  expect(stats.cases).toBe(cases);
  // The generator reaches past authentication and validation, not only into 401s.
  expect(Object.keys(stats.statuses).filter((status) => Number(status) < 300).length).toBeGreaterThan(0);
  expect(stats.statuses[400]).toBeGreaterThan(0);
});
