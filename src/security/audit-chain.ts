import { createHash } from 'node:crypto';

/*
 * Tamper-evident audit log: each entry's hash covers the previous entry's hash, so
 * changing, removing or reordering stored rows breaks the chain at a findable place.
 * Appending forged entries after truncating the tail, or rewriting the whole chain, needs
 * an anchor kept elsewhere (a published head hash): pass it as `expectedHead`.
 */

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

export const genesisHash = '0'.repeat(64);

/** The fields an entry's hash covers. Nullable fields must be null, not absent, to hash the same after a database round trip. */
export interface AuditEntryFields {
  seq: number;
  tenantId: string | null;
  keyId: string | null;
  action: string;
  resource: string | null;
  outcome: string;
  ip: string | null;
  /** ISO 8601 timestamp, stored and hashed as text so no database re-formats it. */
  at: string;
  detail: JsonValue;
  /**
   * The model the entry concerns. Hashed only when set, so entries written before the field
   * existed keep their hashes.
   */
  model?: string | null;
}

export interface AuditEntry extends AuditEntryFields {
  prevHash: string;
  hash: string;
}

/**
 * Sorted keys (UTF-16 code unit order, as RFC 8785), no whitespace, JSON.stringify for
 * strings and numbers. Sorting makes the hash survive databases that reorder JSON keys.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`Cannot hash the non-finite number ${value}.`);
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
      const prototype = Object.getPrototypeOf(value) as unknown;
      if (prototype !== Object.prototype && prototype !== null) {
        throw new TypeError('Only plain objects, arrays and primitives can be hashed; convert dates to ISO strings.');
      }
      const members = Object.keys(value)
        .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
        .sort()
        .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
      return `{${members.join(',')}}`;
    }
    default:
      throw new TypeError(`Cannot hash a value of type ${typeof value}.`);
  }
}

// Picks the hashed fields explicitly, so extra columns a repository returns (ids, joins) do not change the hash.
function hashedFields(entry: AuditEntryFields): AuditEntryFields {
  const { seq, tenantId, keyId, action, resource, outcome, ip, at, detail, model } = entry;
  return { seq, tenantId, keyId, action, resource, outcome, ip, at, detail, ...(model === undefined || model === null ? {} : { model }) };
}

/** sha256 hex of prevHash followed by the canonical JSON of the entry's fields (hash and prevHash excluded). */
export function computeEntryHash(prevHash: string, entry: AuditEntryFields): string {
  return createHash('sha256')
    .update(prevHash + canonicalJson(hashedFields(entry)), 'utf8')
    .digest('hex');
}

/** The next entry after `previous` (undefined for the first one): seq, prevHash and hash filled in. */
export function chainEntry(
  previous: Pick<AuditEntry, 'seq' | 'hash'> | undefined,
  fields: Omit<AuditEntryFields, 'seq'>,
): AuditEntry {
  const seq = previous === undefined ? 1 : previous.seq + 1;
  const prevHash = previous === undefined ? genesisHash : previous.hash;
  const entry: AuditEntryFields = { ...fields, seq };
  return { ...hashedFields(entry), prevHash, hash: computeEntryHash(prevHash, entry) };
}

export type AuditChainBreak = 'altered' | 'deleted' | 'reordered';

export type ChainVerification =
  | { ok: true; count: number }
  | {
      ok: false;
      /** 1-based index into the verified list of the entry to blame. */
      position: number;
      /** That entry's seq (for a tail cut detected through `expectedHead`: the first missing seq). */
      seq: number;
      reason: AuditChainBreak;
      message: string;
    };

export interface VerifyChainOptions {
  /** The hash the first entry must link to: the genesis hash, or the last hash before a verified segment. */
  startPrevHash?: string;
  /** The newest entry as recorded outside the database; detects a cut-off or rewritten tail. */
  expectedHead?: { seq: number; hash: string };
}

/**
 * Verifies entries given in seq order. Reports the first break:
 * - altered: an entry's hash does not match its content (position = that entry), or an
 *   entry was re-hashed after editing, which its successor's prevHash exposes
 *   (position = the edited entry, the predecessor);
 * - reordered: seq does not increase, or an entry links to an entry elsewhere in the
 *   list (position = the first entry out of place);
 * - deleted: an entry's link points to an entry that is absent and seq skips
 *   (position = the entry right after the hole).
 */
export function verifyChain(entries: readonly AuditEntry[], options: VerifyChainOptions = {}): ChainVerification {
  const startPrevHash = options.startPrevHash ?? genesisHash;
  const indexByHash = new Map<string, number>();
  entries.forEach((entry, index) => indexByHash.set(entry.hash, index));
  const broken = (index: number, reason: AuditChainBreak, message: string): ChainVerification => ({
    ok: false,
    position: index + 1,
    seq: entries[index]!.seq,
    reason,
    message,
  });

  for (let index = 0; index < entries.length; index += 1) {
    const entry = entries[index]!;
    const previous = index === 0 ? undefined : entries[index - 1]!;
    if (computeEntryHash(entry.prevHash, entry) !== entry.hash) {
      return broken(index, 'altered', `Entry seq ${entry.seq} does not match its hash: its content was changed.`);
    }
    if (previous !== undefined && entry.seq <= previous.seq) {
      return broken(index, 'reordered', `Entry seq ${entry.seq} follows seq ${previous.seq}: seq must increase.`);
    }
    const expectedPrevHash = previous === undefined ? startPrevHash : previous.hash;
    if (entry.prevHash === expectedPrevHash) continue;

    const linkedIndex = indexByHash.get(entry.prevHash);
    if (linkedIndex !== undefined && linkedIndex !== index - 1) {
      return broken(
        index,
        'reordered',
        `Entry seq ${entry.seq} links to seq ${entries[linkedIndex]!.seq}, which appears at position ${linkedIndex + 1}.`,
      );
    }
    const expectedSeq = previous === undefined ? 1 : previous.seq + 1;
    const seqSkips = previous === undefined ? options.startPrevHash === undefined && entry.seq > 1 : entry.seq > expectedSeq;
    if (seqSkips) {
      return broken(
        index,
        'deleted',
        `Entries seq ${expectedSeq}..${entry.seq - 1} are missing before seq ${entry.seq}.`,
      );
    }
    if (previous === undefined) {
      return broken(index, 'altered', `Entry seq ${entry.seq} does not link to the start of the chain.`);
    }
    return broken(
      index - 1,
      'altered',
      `Entry seq ${previous.seq} was changed and re-hashed: seq ${entry.seq} records a different hash for it.`,
    );
  }

  const head = options.expectedHead;
  if (head !== undefined) {
    const last = entries.at(-1);
    const lastSeq = last?.seq ?? 0;
    if (lastSeq < head.seq) {
      return {
        ok: false,
        position: entries.length + 1,
        seq: lastSeq + 1,
        reason: 'deleted',
        message: `Entries seq ${lastSeq + 1}..${head.seq} are missing from the end of the log.`,
      };
    }
    const headIndex = entries.findIndex((entry) => entry.seq === head.seq);
    if (headIndex === -1 || entries[headIndex]!.hash !== head.hash) {
      const index = headIndex === -1 ? entries.length - 1 : headIndex;
      return broken(index, 'altered', `The log no longer matches the recorded head at seq ${head.seq}: it was rewritten.`);
    }
  }
  return { ok: true, count: entries.length };
}
