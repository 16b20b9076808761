/**
 * Upload benchmark: streams a generated 2 GiB body to a real server (a child process started with
 * bin/aiaas.js, from dist/ when it is current, else through tsx) as a model version upload, and
 * reports the server's peak resident set (VmHWM from /proc) and its resident set before the upload.
 *
 * The body is generated, not read from disk: an ONNX ModelProto whose graph holds one float
 * initializer of ~2 GiB raw data. It is well-formed protobuf, but not a model ONNX Runtime can open
 * (protobuf caps a message at 2 GiB, and the graph has no outputs; real models this size keep their
 * weights in external data). So the server takes every streamed step: receive, encrypt segment by
 * segment, hash, write to a temporary file and rename into the store; decrypt it again for the
 * external-data check (the model's structure only, initializer data skipped); decrypt it once more
 * into a private file for the validation child, which is capped at --validation-memory-bytes (256 MiB
 * here) and is killed or refuses; then the artifact is deleted and the answer is 400
 * INVALID_MODEL_FILE. The child's memory is its own: only the server process is measured.
 *
 *   npm run bench:upload [-- --gib 2]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateMasterKey } from '../src/security/key-ring.ts';
import { varintBytes } from '../src/onnx/skeleton.ts';
import { freePort } from './support.ts';

const { values } = parseArgs({ options: { gib: { type: 'string', default: '2' } } });
const totalBytes = Math.round(Number(values.gib) * 1024 ** 3);
const root = new URL('..', import.meta.url).pathname;
const apiKey = `aiaas_${'U'.repeat(43)}`;

async function statusOf(pid: number): Promise<{ rss: number; peak: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

const varint = (value: number): Buffer => Buffer.from(varintBytes(value));

/** A length-delimited protobuf field: tag, length, the first bytes of its content. */
function field(number: number, length: number, ...content: Buffer[]): Buffer {
  return Buffer.concat([varint(number * 8 + 2), varint(length), ...content]);
}

/** The protobuf bytes before the raw data of a ModelProto { ir_version 8, opset 17, graph { initializer w: float[n] } }. */
function modelHeader(rawBytes: number): Buffer {
  const tensorHead = Buffer.concat([Buffer.from([0x08]), varint(rawBytes / 4), Buffer.from([0x10, 0x01]), field(8, 1, Buffer.from('w')), varint(9 * 8 + 2), varint(rawBytes)]);
  const tensorLength = tensorHead.length + rawBytes;
  const graphHead = Buffer.concat([field(2, 1, Buffer.from('g')), varint(5 * 8 + 2), varint(tensorLength), tensorHead]);
  const graphLength = graphHead.length - tensorHead.length + tensorLength;
  return Buffer.concat([Buffer.from([0x08, 0x08]), field(8, 2, Buffer.from([0x10, 17])), varint(7 * 8 + 2), varint(graphLength), graphHead]);
}

const mebibytes = (bytes: number) => Math.round((bytes / 1024 ** 2) * 10) / 10;

const dataDir = await mkdtemp(join(tmpdir(), 'aiaas-bench-upload-'));
const port = await freePort();
const server: ChildProcess = spawn(process.execPath, ['bin/aiaas.js', 'serve', '--port', String(port), '--data-dir', dataDir, '--validation-memory-bytes', String(256 * 1024 ** 2)], {
  cwd: root,
  env: { ...process.env, AIAAS_MASTER_KEY: generateMasterKey(), AIAAS_BOOTSTRAP_KEY: apiKey, AIAAS_LOG_LEVEL: 'warn' },
  stdio: ['ignore', 'inherit', 'inherit'],
});
try {
  const baseUrl = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    try {
      if ((await fetch(`${baseUrl}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (attempt > 300) throw new Error('server did not become ready');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const headers = { authorization: `Bearer ${apiKey}` };
  const created = await fetch(`${baseUrl}/api/v1/models`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'big' }) });
  if (created.status !== 201) throw new Error(`model create failed: ${created.status} ${await created.text()}`);
  const pid = server.pid!;
  const before = await statusOf(pid);
  let peakRss = before.rss;
  const poll = setInterval(() => {
    void statusOf(pid).then((status) => (peakRss = Math.max(peakRss, status.rss)), () => undefined);
  }, 50);

  const rawBytes = Math.floor((totalBytes - 64) / 4) * 4;
  const header = modelHeader(rawBytes);
  const bodyBytes = header.length + rawBytes;
  const started = performance.now();
  const chunk = Buffer.alloc(1024 * 1024);
  for (let index = 0; index < chunk.length; index += 4) chunk.writeUInt32LE((index * 2654435761) >>> 0, index);
  const response = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const upload = request(`${baseUrl}/api/v1/models/big/versions`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(bodyBytes) },
    });
    upload.on('response', (answer) => {
      let body = '';
      answer.setEncoding('utf8').on('data', (text: string) => (body += text));
      answer.on('end', () => resolve({ status: answer.statusCode ?? 0, body }));
    });
    upload.on('error', reject);
    void (async () => {
      upload.write(header);
      for (let sent = 0; sent < rawBytes; sent += chunk.length) {
        const piece = rawBytes - sent < chunk.length ? chunk.subarray(0, rawBytes - sent) : chunk;
        if (!upload.write(piece)) await new Promise((resolveDrain) => upload.once('drain', resolveDrain));
      }
      upload.end();
    })();
  });
  const seconds = (performance.now() - started) / 1000;
  clearInterval(poll);
  const after = await statusOf(pid);
  let errorCode: string | undefined;
  let errorMessage: string | undefined;
  try {
    const error = (JSON.parse(response.body) as { error?: { code?: string; message?: string } }).error;
    errorCode = error?.code;
    errorMessage = error?.message;
  } catch {
    errorCode = undefined;
  }
  console.log(
    JSON.stringify(
      {
        benchmark: 'upload',
        bodyBytes,
        status: response.status,
        errorCode,
        errorMessage,
        seconds: Math.round(seconds * 10) / 10,
        mebibytesPerSecond: Math.round(bodyBytes / 1024 ** 2 / seconds),
        serverRssBeforeUploadMiB: mebibytes(before.rss),
        serverPeakRssSampledMiB: mebibytes(Math.max(peakRss, after.rss)),
        serverVmHwmMiB: mebibytes(after.peak),
        serverVmHwmBeforeUploadMiB: mebibytes(before.peak),
        goalMiB: 300,
        withinGoal: after.peak < 300 * 1024 ** 2,
      },
      null,
      2,
    ),
  );
} finally {
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  await rm(dataDir, { recursive: true, force: true });
}
