import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTar } from '../../src/platform/tar.ts';

describe('readTar', () => {
  it('reads pax path records of non-ASCII names (record lengths count bytes, not characters)', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'aiaas-tar-'));
    try {
      await mkdir(join(directory, 'modèle-été'));
      await writeFile(join(directory, 'modèle-été', 'model.onnx'), 'onnx bytes');
      execFileSync('tar', ['--format=pax', '-cf', 'saved.tar', 'modèle-été'], { cwd: directory });
      const entries = readTar(new Uint8Array(await readFile(join(directory, 'saved.tar'))));
      expect(entries.map((entry) => entry.name)).toEqual(['modèle-été/model.onnx']);
      expect(new TextDecoder().decode(entries[0]!.bytes)).toBe('onnx bytes');
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
