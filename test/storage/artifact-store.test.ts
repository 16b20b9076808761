import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { FileSystemArtifactStore } from '../../src/storage/artifact-store.ts';
import { runArtifactStoreContract } from './artifact-store.contract.ts';

const scratch = mkdtempSync(join(tmpdir(), 'aiaas-artifacts-'));
let counter = 0;
const freshRoot = (): string => join(scratch, `store-${(counter += 1)}`);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

runArtifactStoreContract({ name: 'FileSystemArtifactStore', newStore: () => FileSystemArtifactStore.open(freshRoot()) });

function pathOf(root: string, ref: string): string {
  const hex = ref.slice('sha256:'.length);
  return join(root, hex.slice(0, 2), hex.slice(2, 4), hex);
}

describe('FileSystemArtifactStore', () => {
  it('lays artifacts out as root/ab/cd/<hex> and leaves no temp file behind', async () => {
    const root = freshRoot();
    const store = await FileSystemArtifactStore.open(root);
    const ref = await store.put(new TextEncoder().encode('layout'));
    const hex = ref.slice('sha256:'.length);
    expect(readdirSync(join(root, hex.slice(0, 2), hex.slice(2, 4)))).toEqual([hex]);
  });

  it('detects a flipped byte on disk as ARTIFACT_CORRUPT', async () => {
    const root = freshRoot();
    const store = await FileSystemArtifactStore.open(root);
    const ref = await store.put(new TextEncoder().encode('precious weights'));
    const path = pathOf(root, ref);
    const onDisk = readFileSync(path);
    onDisk[3] = (onDisk[3] ?? 0) ^ 0x01;
    writeFileSync(path, onDisk);
    const error = await store.get(ref).catch((caught: unknown) => caught);
    expect(AiaasError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'ARTIFACT_CORRUPT', status: 500 });
  });

  it('fails a streamed read of a flipped file with ARTIFACT_CORRUPT at its end', async () => {
    const root = freshRoot();
    const store = await FileSystemArtifactStore.open(root);
    const ref = await store.put(new Uint8Array(600_000).fill(9));
    const path = pathOf(root, ref);
    const onDisk = readFileSync(path);
    onDisk[500_000]! ^= 0x01;
    writeFileSync(path, onDisk);
    const error = await (async () => {
      for await (const _chunk of await store.getStream(ref)) void _chunk;
    })().catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'ARTIFACT_CORRUPT' });
  });

  it('sweeps a stale streamed-put temp file at the root', async () => {
    const root = freshRoot();
    await FileSystemArtifactStore.open(root);
    const stale = join(root, '.tmp-stream-0011223344556677');
    writeFileSync(stale, 'half of an upload');
    const anHourAgo = new Date(Date.now() - 60 * 60 * 1000);
    utimesSync(stale, anHourAgo, anHourAgo);
    await FileSystemArtifactStore.open(root);
    expect(readdirSync(root)).toEqual([]);
  });

  it('heals a truncated file when the same bytes are put again', async () => {
    const root = freshRoot();
    const store = await FileSystemArtifactStore.open(root);
    const bytes = new TextEncoder().encode('truncate me');
    const ref = await store.put(bytes);
    writeFileSync(pathOf(root, ref), bytes.subarray(0, 4));
    await expect(store.get(ref)).rejects.toMatchObject({ code: 'ARTIFACT_CORRUPT' });
    await store.put(bytes);
    expect(new TextDecoder().decode(await store.get(ref))).toBe('truncate me');
  });

  it('sweeps a stale temp file left by a crash at open, but spares a fresh one', async () => {
    const root = freshRoot();
    const store = await FileSystemArtifactStore.open(root);
    const ref = await store.put(new TextEncoder().encode('survivor'));
    const shard = join(pathOf(root, ref), '..');
    const stale = join(shard, '.tmp-deadbeef-000000');
    const fresh = join(shard, '.tmp-cafebabe-000000');
    writeFileSync(stale, 'half-written');
    writeFileSync(fresh, 'being written by another worker');
    const anHourAgo = new Date(Date.now() - 60 * 60 * 1000);
    utimesSync(stale, anHourAgo, anHourAgo);

    const reopened = await FileSystemArtifactStore.open(root);
    const names = readdirSync(shard);
    expect(names).not.toContain('.tmp-deadbeef-000000');
    expect(names).toContain('.tmp-cafebabe-000000');
    expect(await reopened.has(ref)).toBe(true);

    // An explicit sweep with no age threshold removes it too; temp files never show up in list().
    const listed: string[] = [];
    for await (const listedRef of reopened.list()) listed.push(listedRef);
    expect(listed).toEqual([ref]);
    expect(await reopened.sweepTemporaryFiles()).toBe(1);
    expect(readdirSync(shard)).toEqual([ref.slice('sha256:'.length)]);
  });

  it('fails put cleanly when the root is unusable, leaving nothing behind', async () => {
    const root = freshRoot();
    writeFileSync(root, 'a file where the store root should be');
    const store = new FileSystemArtifactStore(root);
    await expect(store.put(new TextEncoder().encode('nowhere'))).rejects.toThrow();
    expect(readFileSync(root, 'utf8')).toBe('a file where the store root should be');
  });
});
