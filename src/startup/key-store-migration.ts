import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import { AiaasError } from '../errors.ts';
import { scrubDatabaseFiles, type KeyStoreDatabase, type Schema, type TenantKeyRepository } from '../storage/index.ts';

/**
 * Moves wrapped data keys left in the main database's `tenant_keys` table (data dirs from before
 * the key store) into the key store, then scrubs them out of `aiaas.db` and its WAL: a backup of
 * the database must never carry a key, or shredding could not reach that backup. Idempotent: a
 * crash between the copy and the scrub just repeats both on the next start.
 */
export async function moveDataKeysToKeyStore(options: {
  db: Kysely<Schema>;
  legacyKeys: TenantKeyRepository;
  keyStore: KeyStoreDatabase;
  logger: Logger;
}): Promise<{ moved: number }> {
  const rows = await options.legacyKeys.listAll();
  if (rows.length === 0) return { moved: 0 };
  let moved = 0;
  for (const row of rows) {
    const existing = options.keyStore.get(row.tenantId);
    if (existing !== undefined) {
      // A tombstone in the key store wins; an active key there must be the same key.
      if (existing.wrappedKey !== '' && row.wrappedKey !== '' && existing.wrappedKey !== row.wrappedKey) {
        throw new AiaasError(
          'CONFIG_INVALID',
          `Tenant ${row.tenantId} has a different data key in the key store ${options.keyStore.path} than in the database; ` +
            'refusing to pick one. Is --key-store (AIAAS_KEY_STORE) the key store of this data directory?',
        );
      }
      continue;
    }
    if (row.wrappedKey === '') options.keyStore.destroy(row.tenantId);
    else options.keyStore.insertIfAbsent(row.tenantId, row, row.createdAt);
    moved += 1;
  }
  // The key store commits with synchronous = FULL, so the keys are durable there before they go here.
  await sql`PRAGMA secure_delete = ON`.execute(options.db);
  await options.legacyKeys.deleteAll();
  const { walTruncated } = await scrubDatabaseFiles(options.db, { vacuum: true });
  if (!walTruncated) options.logger.warn('could not truncate the database WAL after moving the data keys out: another connection was reading; old key bytes may remain in the -wal file until a later checkpoint');
  options.logger.info({ moved, keyStore: options.keyStore.path }, 'moved tenant data keys from the database into the key store');
  return { moved };
}
