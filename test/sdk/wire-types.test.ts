import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { AuditEntry, Dataset, Job, JobHistoryEntry } from '../../src/sdk/index.ts';

const sdkDir = join(import.meta.dirname, '../../src/sdk');

describe('SDK wire types', () => {
  it('import server modules for types only, so the client loads no server code', async () => {
    const offenders: string[] = [];
    for (const file of (await readdir(sdkDir)).filter((name) => name.endsWith('.ts'))) {
      const source = await readFile(join(sdkDir, file), 'utf8');
      for (const match of source.matchAll(/^(import|export)\s+(type\s+)?[^;]*?from\s+'([^']+)'/gms)) {
        const [statement, , typeOnly, target] = match;
        const outside = target!.startsWith('../');
        if (outside && typeOnly === undefined) offenders.push(`${file}: ${statement!.split('\n')[0]}`);
        // Runtime dependencies other than node built-ins would be pulled into every client too.
        if (!outside && !target!.startsWith('./') && !target!.startsWith('node:') && typeOnly === undefined) offenders.push(`${file}: ${target}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('describe what the server sends for the shapes that had drifted', () => {
    expectTypeOf<Dataset['schema']['label']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<JobHistoryEntry>().toHaveProperty('learningRate').toEqualTypeOf<number>();
    expectTypeOf<JobHistoryEntry>().toHaveProperty('epochs').toEqualTypeOf<number>();
    expectTypeOf<AuditEntry['outcome']>().toEqualTypeOf<'success' | 'denied' | 'error'>();
    expectTypeOf<Job['cancelRequested']>().toEqualTypeOf<boolean>();
  });
});
