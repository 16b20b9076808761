/**
 * The long fuzz run: `npm run fuzz -- --minutes N [--seed S]`. Half the time goes to the HTTP
 * fuzzer, half to the file-format fuzzer (the ONNX target, a child process per case, gets one case
 * in fifty). Prints how many cases it tried; every failure is printed and saved to
 * test/fuzz/corpus/<format>/ (HTTP requests to corpus/http/) so `npm test` replays it from then on.
 * Exits 1 on any failure.
 */
import { parseArgs } from 'node:util';
import { formatTargets, mutatedInputs, runFormatCase, saveToCorpus } from '../test/fuzz/formats.ts';
import { createHttpFuzzWorld, encodeHttpCase, finishHttpFuzz, runHttpFuzz } from '../test/fuzz/http-fuzzer.ts';
import { Random } from '../test/fuzz/random.ts';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '1' }, seed: { type: 'string' } } });
const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new Error('--minutes must be a positive number');
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
const started = Date.now();
const halfway = started + (minutes * 60_000) / 2;
const end = started + minutes * 60_000;
console.log(`fuzzing for ${minutes} min, seed ${seed}`);

let failed = 0;

// HTTP: one server, batches of requests with a liveness and snapshot check after each batch.
const world = await createHttpFuzzWorld();
const random = new Random(seed);
let httpCases = 0;
const statuses: Record<number, number> = {};
while (Date.now() < halfway) {
  const stats = await runHttpFuzz(world, random, { count: 2000, until: halfway });
  httpCases += stats.cases;
  for (const [status, count] of Object.entries(stats.statuses)) statuses[Number(status)] = (statuses[Number(status)] ?? 0) + count;
  const failures = [...stats.failures, ...(await finishHttpFuzz(world))];
  for (const failure of failures) {
    failed++;
    const saved = failure.sent === undefined ? '' : ` (saved ${saveToCorpus('http', new TextEncoder().encode(encodeHttpCase(world, failure.sent)), 'json')})`;
    console.log(`HTTP FAILURE ${failure.status} ${failure.problem}\n  ${failure.request}${saved}`);
  }
  if (failures.some((failure) => failure.request === 'GET /healthz' || failure.request === 'snapshot')) break;
}
await world.server.close();
console.log(`http: ${httpCases} cases, statuses ${JSON.stringify(statuses)}`);

// File formats, round-robin; the slow ONNX target every fiftieth round.
const targets = formatTargets();
const generators = new Map(targets.map((target) => [target.name, mutatedInputs(target, random)]));
const counts: Record<string, number> = {};
const seen = new Set<string>();
for (let round = 0; Date.now() < end; round++) {
  for (const target of targets) {
    if (target.slow === true && round % 50 !== 0) continue;
    const bytes = generators.get(target.name)!.next().value as Uint8Array;
    const failure = await runFormatCase(target, bytes);
    counts[target.name] = (counts[target.name] ?? 0) + 1;
    if (failure !== undefined) {
      failed++;
      const key = `${failure.format} ${failure.error.slice(0, 80)}`;
      if (!seen.has(key)) {
        seen.add(key);
        console.log(`FORMAT FAILURE ${failure.format}: ${failure.error} (saved ${saveToCorpus(failure.format, failure.input)})`);
      }
    }
  }
}
const formatCases = Object.values(counts).reduce((sum, count) => sum + count, 0);
console.log(`formats: ${formatCases} cases ${JSON.stringify(counts)}`);
console.log(`total: ${httpCases + formatCases} cases in ${((Date.now() - started) / 60_000).toFixed(1)} min, ${failed} failures`);
process.exit(failed === 0 ? 0 : 1);
