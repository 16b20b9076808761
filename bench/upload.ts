/**
 * Upload benchmark: streams a generated 2 GiB body to a real server (a child process started with
 * bin/aiaas.js, from dist/ when it is current, else through tsx) as a model version upload, and
 * reports the server's peak resident set (VmHWM from /proc) and its resident set before the upload.
 *
 * The body is generated, not read from disk, and is not an ONNX model: a valid single-file ONNX model
 * cannot be 2 GiB (protobuf caps a message at 2 GiB; such models keep weights in external data). So
 * the server takes the whole streamed path (receive, encrypt segment by segment, hash, write to a
 * temporary file, rename into the store), then streams the stored artifact back, decrypting, into the
 * validation child, which is capped at --validation-memory-bytes (256 MiB here) and is killed or
 * refuses; the server then deletes the artifact and answers 400 INVALID_MODEL_FILE. The child's
 * memory is its own: only the server process is measured.
 *
 *   npm run bench:upload [-- --gib 2]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateMasterKey } from '../src/security/key-ring.ts';

const { values } = parseArgs({ options: { gib: { type: 'string', default: '2' } } });
const totalBytes = Math.round(Number(values.gib) * 1024 ** 3);
const root = new URL('..', import.meta.url).pathname;
const apiKey = `aiaas_${'U'.repeat(43)}`;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function statusOf(pid: number): Promise<{ rss: number; peak: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
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

  const started = performance.now();
  const chunk = Buffer.alloc(1024 * 1024);
  for (let index = 0; index < chunk.length; index += 4) chunk.writeUInt32LE((index * 2654435761) >>> 0, index);
  const response = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const upload = request(`${baseUrl}/api/v1/models/big/versions`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(totalBytes) },
    });
    upload.on('response', (answer) => {
      let body = '';
      answer.setEncoding('utf8').on('data', (text: string) => (body += text));
      answer.on('end', () => resolve({ status: answer.statusCode ?? 0, body }));
    });
    upload.on('error', reject);
    void (async () => {
      for (let sent = 0; sent < totalBytes; sent += chunk.length) {
        const piece = totalBytes - sent < chunk.length ? chunk.subarray(0, totalBytes - sent) : chunk;
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
        bodyBytes: totalBytes,
        status: response.status,
        errorCode,
        errorMessage,
        seconds: Math.round(seconds * 10) / 10,
        mebibytesPerSecond: Math.round(totalBytes / 1024 ** 2 / seconds),
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
