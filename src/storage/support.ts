import { randomBytes } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Schema } from './schema.ts';

const idAlphabet = '0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * `prefix_` + 20 base-36 characters (~103 bits). The prefix makes an id's kind
 * obvious in logs and URLs; the rejection sampling keeps the alphabet unbiased.
 */
export function newId(prefix: string): string {
  let out = '';
  while (out.length < 20) {
    for (const byte of randomBytes(32)) {
      if (byte < 252 && out.length < 20) out += idAlphabet[byte % 36];
    }
  }
  return `${prefix}_${out}`;
}

/**
 * Runs `work` in its own transaction, re-running it (up to `attempts` times in all) after
 * a retryable write conflict. Inside a caller's transaction a conflict has already doomed
 * that transaction, so it is rethrown at once.
 */
export async function transactionWithRetry<T>(
  db: Kysely<Schema>,
  work: (transaction: Kysely<Schema>) => Promise<T>,
  attempts = 5,
): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await inTransaction(db, work);
    } catch (error) {
      if (!isRetryableWriteConflict(error) || attempt >= attempts || db.isTransaction) throw error;
    }
  }
}

/**
 * Runs `work` in a transaction, or directly when `db` already is one: Kysely
 * cannot nest transactions, and repositories built over a transaction (see
 * `createRepositories`) must compose with it instead of opening their own.
 */
export function inTransaction<T>(db: Kysely<Schema>, work: (transaction: Kysely<Schema>) => Promise<T>): Promise<T> {
  if (db.isTransaction) return work(db);
  return db.transaction().execute((transaction: Transaction<Schema>) => work(transaction));
}

/** Recognises a unique-constraint violation from SQLite or PostgreSQL. */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
}

export function toJsonText(value: unknown): string {
  return JSON.stringify(value);
}

export function fromJsonText<T>(text: string): T;
export function fromJsonText<T>(text: string | null): T | undefined;
export function fromJsonText<T>(text: string | null): T | undefined {
  return text === null ? undefined : (JSON.parse(text) as T);
}

/** Undefined means "not given"; null is stored as SQL NULL. */
export function toNullableJsonText(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}

export interface Page {
  readonly limit?: number;
  readonly offset?: number;
}

export const defaultPageLimit = 100;
export const maximumPageLimit = 1000;

export function pageLimit(page: Page | undefined): number {
  const limit = page?.limit ?? defaultPageLimit;
  return Math.max(1, Math.min(maximumPageLimit, Math.trunc(limit)));
}

export function pageOffset(page: Page | undefined): number {
  return Math.max(0, Math.trunc(page?.offset ?? 0));
}

/**
 * Errors after which re-running the same transaction can succeed: a lost race
 * on a unique key, SQLite's "snapshot went stale while you waited"
 * (SQLITE_BUSY_SNAPSHOT, returned at once without honouring busy_timeout), or
 * a PostgreSQL serialization failure / deadlock.
 */
export function isRetryableWriteConflict(error: unknown): boolean {
  if (isUniqueViolation(error)) return true;
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  return code === 'SQLITE_BUSY_SNAPSHOT' || code === '40001' || code === '40P01';
}
