import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { downloadToFile } from '../../src/platform/download.ts';
import { parsePullRequest, resolvePullUrl } from '../../src/platform/model-pull.ts';
import { checkAddresses, checkUrl, isSpecialAddress, type PullPolicy } from '../../src/platform/pull-policy.ts';
import { randomLlamaGguf } from '../../src/runtimes/gguf/random-llama.ts';
import { startFileServer, type FileServer } from './file-server.ts';

const gguf = randomLlamaGguf({ seed: 3 });
const ggufSha256 = createHash('sha256').update(gguf).digest('hex');
const loopbackAllowed: PullPolicy = { allowedHosts: ['127.0.0.1'], allowPrivate: false, maxRedirects: 3 };
const publicOnly: PullPolicy = { allowedHosts: [], allowPrivate: false, maxRedirects: 3 };

let server: FileServer;
let other: FileServer;
let directory: string;

beforeAll(async () => {
  server = await startFileServer(gguf);
  other = await startFileServer(gguf);
  directory = await mkdtemp(join(tmpdir(), 'aiaas-download-'));
});
afterAll(async () => {
  await server.close();
  await other.close();
  await rm(directory, { recursive: true, force: true });
});

async function refusal(promise: Promise<unknown>): Promise<AiaasError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!AiaasError.isInstance(error)) throw new Error(`expected an AiaasError, got ${String(error)}`);
  return error;
}

describe('hf:// shorthand', () => {
  it('maps to the Hugging Face resolve URL on main, sub-folders included', () => {
    expect(resolvePullUrl('hf://TheBloke/TinyLlama-GGUF/tinyllama.Q4_K_M.gguf').href).toBe('https://huggingface.co/TheBloke/TinyLlama-GGUF/resolve/main/tinyllama.Q4_K_M.gguf');
    expect(resolvePullUrl('hf://org/repo/sub/dir/m.gguf').href).toBe('https://huggingface.co/org/repo/resolve/main/sub/dir/m.gguf');
    expect(resolvePullUrl('https://example.com/a.gguf').href).toBe('https://example.com/a.gguf');
  });

  it('refuses shorthand without a file, or with dot segments', () => {
    for (const url of ['hf://org/repo', 'hf://org/repo/', 'hf://org/../x/m.gguf', 'hf://org//m.gguf']) {
      expect(() => resolvePullUrl(url), url).toThrowError(/hf:\/\/OWNER\/REPO\/FILE/);
    }
  });
});

describe('pull policy (SSRF)', () => {
  it('classifies special addresses, IPv4-mapped IPv6 included', () => {
    for (const address of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fd00::1', 'fc00::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '64:ff9b::a9fe:a9fe', '2002:7f00:1::']) {
      expect(isSpecialAddress(address), address).toBe(true);
    }
    for (const address of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
      expect(isSpecialAddress(address), address).toBe(false);
    }
  });

  it('refuses a host when any one of its resolved addresses is special (DNS rebinding)', () => {
    const url = new URL('https://models.example.com/m.gguf');
    expect(() => checkAddresses(publicOnly, url, ['8.8.8.8', '1.1.1.1'])).not.toThrow();
    expect(() => checkAddresses(publicOnly, url, ['8.8.8.8', '10.0.0.7'])).toThrowError(/10\.0\.0\.7/);
    expect(() => checkAddresses({ ...publicOnly, allowPrivate: true }, url, ['10.0.0.7'])).not.toThrow();
    // A host the operator listed may be private (an internal mirror).
    expect(() => checkAddresses({ ...publicOnly, allowedHosts: ['*.example.com'] }, url, ['10.0.0.7'])).not.toThrow();
  });

  it('applies the allow-list (names and *.suffixes), schemes and IP literals before any request', () => {
    const listed: PullPolicy = { allowedHosts: ['huggingface.co', '*.hf.co'], allowPrivate: false, maxRedirects: 3 };
    expect(() => checkUrl(listed, new URL('https://huggingface.co/x'))).not.toThrow();
    expect(() => checkUrl(listed, new URL('https://cdn-lfs.hf.co/x'))).not.toThrow();
    const codes = (policy: PullPolicy, url: string) => {
      try {
        checkUrl(policy, new URL(url));
        return 'allowed';
      } catch (error) {
        return (error as AiaasError).details?.reason;
      }
    };
    expect(codes(listed, 'https://hf.co.evil.example/x')).toBe('host-not-allowed');
    expect(codes(listed, 'https://evilhf.co/x')).toBe('host-not-allowed');
    expect(codes(publicOnly, 'http://169.254.169.254/latest/meta-data')).toBe('private-address');
    expect(codes(publicOnly, 'http://[::1]:8080/x')).toBe('private-address');
    expect(codes(publicOnly, 'file:///etc/passwd')).toBe('scheme');
    expect(codes(publicOnly, 'https://user:secret@example.com/x')).toBe('scheme');
  });

  it('validates a pull request before it is queued', () => {
    expect(parsePullRequest({ model: 'm', url: 'hf://o/r/f.gguf', sha256: `sha256:${'AB'.repeat(32)}` }, publicOnly)).toEqual({ model: 'm', settings: { url: 'hf://o/r/f.gguf', sha256: 'ab'.repeat(32) } });
    expect(() => parsePullRequest({ model: 'm', url: 'https://x.example/f', sha256: 'abc' }, publicOnly)).toThrowError(/64 hex digits/);
    expect(() => parsePullRequest({ model: 'm', url: 'http://127.0.0.1/f' }, publicOnly)).toThrowError(/special address/);
    expect(() => parsePullRequest({ model: 'bad/name', url: 'https://x.example/f' }, publicOnly)).toThrowError(/Invalid model name/);
  });
});

describe('downloadToFile against a local server', () => {
  it('streams the file to disk and hashes it', async () => {
    const path = join(directory, 'whole.gguf');
    const progress: number[] = [];
    const result = await downloadToFile(new URL(`${server.origin}/file`), path, {
      policy: loopbackAllowed,
      maxBytes: 10 * 1024 * 1024,
      signal: new AbortController().signal,
      onProgress: (done, total) => {
        expect(total).toBe(gguf.byteLength);
        progress.push(done);
      },
    });
    expect(result).toMatchObject({ bytes: gguf.byteLength, sha256: ggufSha256, resumes: 0 });
    expect(Buffer.compare(await readFile(path), Buffer.from(gguf))).toBe(0);
    expect(progress.at(-1)).toBe(gguf.byteLength);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  it('resumes a dropped connection with Range and gets the same bytes', async () => {
    const path = join(directory, 'resumed.gguf');
    const resumedFrom: number[] = [];
    const result = await downloadToFile(new URL(`${server.origin}/drop-once`), path, {
      policy: loopbackAllowed,
      maxBytes: 10 * 1024 * 1024,
      signal: new AbortController().signal,
      onResume: (fromByte) => resumedFrom.push(fromByte),
    });
    expect(result).toMatchObject({ bytes: gguf.byteLength, sha256: ggufSha256, resumes: 1 });
    expect(Buffer.compare(await readFile(path), Buffer.from(gguf))).toBe(0);
    const seen = server.requests.filter((request) => request.path === '/drop-once');
    expect(seen).toHaveLength(2);
    expect(seen[0]!.range).toBeUndefined();
    // The resume asks for exactly the bytes it does not have.
    expect(resumedFrom).toHaveLength(1);
    expect(resumedFrom[0]).toBeGreaterThan(0);
    expect(seen[1]!.range).toBe(`bytes=${resumedFrom[0]}-`);
  });

  it('starts over when the server answers a resume with the whole file', async () => {
    const path = join(directory, 'restarted.gguf');
    const result = await downloadToFile(new URL(`${server.origin}/no-range-drop-once`), path, { policy: loopbackAllowed, maxBytes: 10 * 1024 * 1024, signal: new AbortController().signal });
    expect(result).toMatchObject({ bytes: gguf.byteLength, sha256: ggufSha256, resumes: 1 });
    expect(Buffer.compare(await readFile(path), Buffer.from(gguf))).toBe(0);
  });

  it('refuses loopback unless the operator allows it, before sending anything', async () => {
    const before = server.requests.length;
    const error = await refusal(downloadToFile(new URL(`${server.origin}/file`), join(directory, 'refused'), { policy: publicOnly, maxBytes: 1 << 20, signal: new AbortController().signal }));
    expect(error.code).toBe('PULL_SOURCE_REFUSED');
    expect(error.details).toMatchObject({ reason: 'private-address', address: '127.0.0.1' });
    expect(server.requests.length).toBe(before);
  });

  it('checks every redirect: a hop to a loopback name is refused and never contacted', async () => {
    const target = `http://localhost:${other.port}/file`;
    const error = await refusal(
      downloadToFile(new URL(`${server.origin}/redirect?to=${encodeURIComponent(target)}`), join(directory, 'redirected'), { policy: loopbackAllowed, maxBytes: 1 << 20, signal: new AbortController().signal }),
    );
    expect(error.code).toBe('PULL_SOURCE_REFUSED');
    expect(error.details).toMatchObject({ host: 'localhost', reason: 'private-address' });
    expect(other.requests).toHaveLength(0);
  });

  it('follows an allowed redirect, and at most maxRedirects of them', async () => {
    const target = `${server.origin}/file`;
    const once = `${server.origin}/redirect?to=${encodeURIComponent(target)}`;
    const result = await downloadToFile(new URL(once), join(directory, 'followed'), { policy: loopbackAllowed, maxBytes: 1 << 20, signal: new AbortController().signal });
    expect(result.sha256).toBe(ggufSha256);
    expect(result.finalUrl).toBe(target);
    const error = await refusal(downloadToFile(new URL(once), join(directory, 'too-many'), { policy: { ...loopbackAllowed, maxRedirects: 0 }, maxBytes: 1 << 20, signal: new AbortController().signal }));
    expect(error.code).toBe('PULL_FAILED');
  });

  it('refuses a file larger than the limit and reports HTTP errors', async () => {
    const tooLarge = await refusal(downloadToFile(new URL(`${server.origin}/file`), join(directory, 'large'), { policy: loopbackAllowed, maxBytes: 1024, signal: new AbortController().signal }));
    expect(tooLarge.code).toBe('PAYLOAD_TOO_LARGE');
    const missing = await refusal(downloadToFile(new URL(`${server.origin}/missing`), join(directory, 'missing'), { policy: loopbackAllowed, maxBytes: 1 << 20, signal: new AbortController().signal }));
    expect(missing.code).toBe('PULL_FAILED');
    expect(missing.details).toMatchObject({ status: 404 });
  });
});
