// Parses inference request bodies off the server's main thread (see json-offload.ts). Plain JavaScript
// so it runs under bare `node` whatever loader (tsx, vitest) the parent uses. A message is a batch of
// bodies laid end to end in one buffer; the answer is one message with a result per body, in order.
// Flat arrays of numbers under `inputs[].data` (KServe V2) come back as typed-array views into one
// buffer for the whole batch, transferred rather than copied: Float32Array for an FP32 input (the
// values the tensor parser would store), Float64Array otherwise (lossless: JSON numbers are doubles).
// Typed arrays cross threads for almost nothing where an array of 784 numbers costs about what
// parsing it did. One buffer each way, not one per body: every transferred buffer has a fixed cost
// on both threads, and each buffer the main thread receives is memory its GC must account for.
// A body that is not valid JSON comes back as `fallback`: the main thread parses it again to say
// exactly where it breaks (only failures pay twice).
import { parentPort, workerData } from 'node:worker_threads';
import { lowerThreadPriority } from '../../runtimes/thread-priority.mjs';

lowerThreadPriority(workerData?.nice ?? 0);

// As Buffer#toString('utf8') decodes on the main thread: a byte-order mark is kept (and refused by
// JSON.parse there too), invalid sequences become U+FFFD.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** True when every element is a number (JSON.parse never makes a non-finite one). */
function allNumbers(items) {
  for (let index = 0; index < items.length; index++) if (typeof items[index] !== 'number') return false;
  return true;
}

/**
 * Finds each flat numeric `inputs[].data`, to be packed into the batch's buffers: an FP32 input's
 * numbers as float32 (exactly what the tensor parser would store for them), any other's as doubles.
 */
function collectTensorData(value, float32Inputs, float64Inputs) {
  if (typeof value !== 'object' || value === null || !Array.isArray(value.inputs)) return;
  for (const input of value.inputs) {
    if (typeof input !== 'object' || input === null || !Array.isArray(input.data) || input.data.length === 0) continue;
    if (!allNumbers(input.data)) continue;
    (input.datatype === 'FP32' ? float32Inputs : float64Inputs).push(input);
  }
}

/** Moves the collected inputs' numbers into one typed array, each input's data a view into it. */
function pack(inputs, Kind) {
  const total = inputs.reduce((sum, input) => sum + input.data.length, 0);
  const shared = new Kind(total);
  let at = 0;
  for (const input of inputs) {
    const items = input.data;
    for (let index = 0; index < items.length; index++) shared[at + index] = items[index];
    input.data = shared.subarray(at, at + items.length);
    at += items.length;
  }
  return shared;
}

/**
 * Whether a parsed value nests deeper than `limit`. Such a body is left to the main thread (which
 * refuses it with NESTING_TOO_DEEP or a rank error): sending it would recurse through the structured
 * clone on both threads, and deep enough nesting fails there, on the receiving side as a lost message.
 */
function deeperThan(value, limit) {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return false;
  if (limit === 0) return true;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) if (deeperThan(value[index], limit - 1)) return true;
    return false;
  }
  for (const key in value) if (deeperThan(value[key], limit - 1)) return true;
  return false;
}

/** Deeper than any tensor the server accepts (rank ≤ 64) plus its envelope; the platform's JSON limit. */
const maxDepth = 100;

function parseOne(bytes, packTensors, float32Inputs, float64Inputs) {
  const text = decoder.decode(bytes);
  if (text.trim() === '') return { empty: true };
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return { fallback: true };
  }
  if (deeperThan(value, maxDepth)) return { fallback: true };
  if (packTensors) collectTensorData(value, float32Inputs, float64Inputs);
  return { value };
}

parentPort.on('message', ({ bytes, lengths, packs }) => {
  const float32Inputs = [];
  const float64Inputs = [];
  const results = [];
  let offset = 0;
  for (let index = 0; index < lengths.length; index++) {
    const length = lengths[index];
    try {
      results.push(parseOne(bytes.subarray(offset, offset + length), packs[index], float32Inputs, float64Inputs));
    } catch {
      results.push({ fallback: true });
    }
    offset += length;
  }
  const transfer = [];
  if (float32Inputs.length > 0) transfer.push(pack(float32Inputs, Float32Array).buffer);
  if (float64Inputs.length > 0) transfer.push(pack(float64Inputs, Float64Array).buffer);
  try {
    parentPort.postMessage(results, transfer);
  } catch {
    // Something in a parsed value cannot be cloned (it cannot, from JSON): let the main thread parse all.
    parentPort.postMessage(lengths.map(() => ({ fallback: true })));
  }
});
