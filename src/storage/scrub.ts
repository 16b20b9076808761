import { sql, type Kysely } from 'kysely';
import type { Schema } from './schema.ts';

/*
 * Making deleted rows leave the files, not just the tables. With `secure_delete` on, SQLite zeroes
 * a deleted cell in the page it rewrites; but in WAL mode the old page images stay in the -wal
 * file until a checkpoint copies the new pages back and the WAL is truncated. VACUUM additionally
 * rebuilds the file, dropping free pages that older page versions may have left.
 */
export interface ScrubResult {
  /** False when a reader kept the checkpoint from finishing: the WAL may still hold old pages. */
  walTruncated: boolean;
}

export async function scrubDatabaseFiles(db: Kysely<Schema>, options: { vacuum?: boolean } = {}): Promise<ScrubResult> {
  await sql`PRAGMA secure_delete = ON`.execute(db);
  if (options.vacuum === true) await sql`VACUUM`.execute(db);
  const { rows } = await sql<{ busy: number; log: number; checkpointed: number }>`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db);
  const result = rows[0];
  return { walTruncated: result === undefined || result.busy === 0 };
}
