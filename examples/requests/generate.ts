/**
 * Writes the request bodies `aiaas demo` sends and prints curl commands for: test digit 0 of the demo's
 * fixed MNIST split, as a KServe V2 request (mnist-v2.json) and a TF-Serving one (mnist-tfserving.json).
 * A test checks the files still match what the demo computes.
 * Usage: npx tsx examples/requests/generate.ts
 */
import { writeFile } from 'node:fs/promises';
import { demoRequestBodies, requestFiles } from '../../src/cli/commands/demo.ts';
import { json } from '../../src/cli/format.ts';

const bodies = demoRequestBodies();
await writeFile(requestFiles.v2, json(bodies.v2));
await writeFile(requestFiles.tfserving, json(bodies.tfserving));
console.log(`wrote ${requestFiles.v2} and ${requestFiles.tfserving}`);
