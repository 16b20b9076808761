/**
 * Writes a tiny llama-architecture GGUF model with seeded random weights (a few MB, a ChatML template): it
 * answers gibberish, but it exercises every language-model route without downloading a real model.
 * Usage: npx tsx examples/llm/make-tiny-gguf.ts [FILE]   (default: tiny.gguf)
 */
import { writeFile } from 'node:fs/promises';
import { randomLlamaGguf } from '../../src/runtimes/gguf/random-llama.ts';

const file = process.argv[2] ?? 'tiny.gguf';
const model = randomLlamaGguf({ seed: 1, name: 'tiny-random-llama' });
await writeFile(file, model);
console.log(`wrote ${file} (${model.byteLength} bytes, random weights)`);
