import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { SigningKey } from '../../src/security/signing-key.ts';
import { captureIo, fakeServer, sendJson } from './helpers.ts';

let directory: string;
let server: Awaited<ReturnType<typeof fakeServer>> | undefined;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'aiaas-verify-'));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(directory, { recursive: true, force: true });
});

const onnx = Buffer.from('pretend these are the bytes of model.onnx');
const signer = new SigningKey(generateKeyPairSync('ed25519').privateKey);
const record = {
  format: 'aiaas-provenance-1',
  model: 'mnist',
  version: 3,
  files: [{ name: 'model.onnx', sha256: createHash('sha256').update(onnx).digest('hex'), bytes: onnx.length }],
  signingKey: { algorithm: 'Ed25519', keyId: signer.published.keyId },
};

async function verify(argv: string[], served: { record: unknown; signature: string } = { record, signature: signer.signRecord(record).signature }) {
  server = await fakeServer({
    'GET /api/v1/models/mnist/versions/3/provenance': sendJson(200, { ...served, keyId: signer.published.keyId }),
    'GET /api/v1/signing-key': sendJson(200, signer.published),
  });
  const io = captureIo({ env: { AIAAS_SERVER: server.url, AIAAS_API_KEY: 'aiaas_test_key' }, cwd: directory });
  const code = await main(['models', 'verify', 'mnist@3', ...argv], io);
  return { code, out: io.out(), err: io.err() };
}

describe('aiaas models verify', () => {
  it('checks the signature and the file hash locally', async () => {
    await writeFile(join(directory, 'model.onnx'), onnx);
    const result = await verify(['--file', 'model.onnx']);
    expect(result.code, result.err).toBe(0);
    expect(result.out).toContain(`signature: valid (Ed25519 key ${signer.published.keyId})`);
    expect(result.out).toMatch(/model\.onnx: sha256 [0-9a-f]{64} matches model\.onnx/);
  });

  it('fails on a file that is not the recorded one', async () => {
    await writeFile(join(directory, 'model.onnx'), Buffer.concat([onnx, Buffer.from('!')]));
    const result = await verify(['--file', 'model.onnx', '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.out)).toMatchObject({ signature: 'valid', files: [{ matches: false, expected: record.files[0]!.sha256 }] });
    expect(result.err).toContain('HASH_MISMATCH');
  });

  it('fails on an altered record', async () => {
    const result = await verify([], { record: { ...record, version: 4 }, signature: signer.signRecord(record).signature });
    expect(result.code).toBe(1);
    expect(result.out).toContain('signature: invalid');
    expect(result.err).toContain('SIGNATURE_INVALID');
  });

  it('verifies against a pinned public key instead of the served one', async () => {
    const other = new SigningKey(generateKeyPairSync('ed25519').privateKey);
    await writeFile(join(directory, 'pinned.pem'), other.published.publicKeyPem);
    const result = await verify(['--public-key', 'pinned.pem']);
    expect(result.code).toBe(1);
    expect(result.err).toContain('SIGNATURE_INVALID');
    await writeFile(join(directory, 'right.pem'), signer.published.publicKeyPem);
    expect((await verify(['--public-key', 'right.pem'])).code).toBe(0);
  });
});
