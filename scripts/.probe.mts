import { formatTargets, runFormatCase, mutatedInputs, saveToCorpus } from '../test/fuzz/formats.ts';
import { Random } from '../test/fuzz/random.ts';
const random = new Random(Number(process.argv[2] ?? 1));
const counts: Record<string, number> = {};
for (const target of formatTargets()) {
  if (target.slow) continue;
  const gen = mutatedInputs(target, random);
  const seen = new Set<string>();
  for (let i = 0; i < Number(process.argv[3] ?? 3000); i++) {
    const bytes = gen.next().value as Uint8Array;
    const failure = await runFormatCase(target, bytes);
    counts[target.name] = (counts[target.name] ?? 0) + 1;
    if (failure) { const key = failure.error.slice(0, 80); if (!seen.has(key)) { seen.add(key); console.log(target.name, failure.error.slice(0,200)); saveToCorpus(target.name, bytes); } }
  }
}
console.log(counts);
