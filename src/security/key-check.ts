import { createHmac, timingSafeEqual } from 'node:crypto';
import { AiaasError } from '../errors.ts';
import { unwrapDataKey } from './envelope.ts';
import type { MasterKey, MasterKeyRing } from './key-ring.ts';
import type { TenantWrappedDataKey } from './tenant-keys.ts';

/*
 * Key-check values: an HMAC of a fixed label under each master key version, kept in the key store.
 * It tells a wrong master key apart at startup, before anything is read or wrapped, and reveals
 * nothing about the key (HMAC-SHA256 is a PRF). Without it a wrong key starts "fine", answers
 * DATA_KEY_UNWRAP_FAILED on every read, and wraps new tenants' keys under the wrong master.
 */
const checkLabel = 'aiaas master key check v1';

export function keyCheckValue(master: MasterKey): string {
  return createHmac('sha256', master.key).update(`${checkLabel}\0${master.version}`).digest('hex');
}

/** What the check needs from the key store. */
export interface KeyCheckStore {
  listChecks(): readonly { masterKeyVersion: number; checkValue: string }[];
  /** Records the value unless the version has one; returns the value stored afterwards. */
  putCheckIfAbsent(masterKeyVersion: number, checkValue: string): string;
}

export interface VerifyMasterKeyRingOptions {
  checks: KeyCheckStore;
  /** Every active wrapped data key (tombstones excluded). */
  wrappedKeys: Iterable<TenantWrappedDataKey> | AsyncIterable<TenantWrappedDataKey>;
  /** Where the key store lives, for the error message. */
  keyStorePath: string;
}

export interface MasterKeyRingVerification {
  /** Versions whose check value was recorded by this call (first start of this version, or a new key). */
  recorded: number[];
}

function mismatch(problem: string, keyStorePath: string): AiaasError {
  return new AiaasError(
    'MASTER_KEY_MISMATCH',
    `${problem} Refusing to start: a wrong master key would fail every read and wrap new tenants' keys under the wrong key. ` +
      'Configure the master key ring this data directory was created with: --master-key (AIAAS_MASTER_KEY) or ' +
      `--master-key-file (AIAAS_MASTER_KEY_FILE). The key-check values are in the key store ${keyStorePath} (--key-store, AIAAS_KEY_STORE).`,
  );
}

function sameHex(left: string, right: string): boolean {
  const a = Buffer.from(left, 'hex');
  const b = Buffer.from(right, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Throws MASTER_KEY_MISMATCH unless every version of `ring` matches its recorded check value, and
 * every data key in use is wrapped under a version the ring holds. A version without a check value
 * (a data dir from before key-check values, or a newly added key) is proven by unwrapping one data
 * key wrapped under it, when there is one, and its check value is recorded.
 */
export async function verifyMasterKeyRing(ring: MasterKeyRing, options: VerifyMasterKeyRingOptions): Promise<MasterKeyRingVerification> {
  const recordedChecks = new Map(options.checks.listChecks().map((check) => [check.masterKeyVersion, check.checkValue]));
  for (const version of ring.versions) {
    const expected = recordedChecks.get(version);
    if (expected !== undefined && !sameHex(expected, keyCheckValue(ring.get(version)!))) {
      throw mismatch(`Master key version ${version} is not the key this data directory's data keys were wrapped with.`, options.keyStorePath);
    }
  }
  const sampleByVersion = new Map<number, TenantWrappedDataKey>();
  for await (const key of options.wrappedKeys) {
    if (!sampleByVersion.has(key.masterKeyVersion)) sampleByVersion.set(key.masterKeyVersion, key);
  }
  const missing = [...sampleByVersion.keys()].filter((version) => !ring.has(version)).sort((a, b) => a - b);
  if (missing.length > 0) {
    throw mismatch(
      `Data keys are wrapped under master key version(s) ${missing.join(', ')}, which the configured ring (versions ${ring.versions.join(', ')}) lacks.`,
      options.keyStorePath,
    );
  }
  const recorded: number[] = [];
  for (const version of ring.versions) {
    if (recordedChecks.has(version)) continue;
    const sample = sampleByVersion.get(version);
    if (sample !== undefined) {
      try {
        unwrapDataKey(ring, sample.tenantId, sample).fill(0);
      } catch (error) {
        if (AiaasError.isInstance(error) && error.code === 'DATA_KEY_UNWRAP_FAILED') {
          throw mismatch(`Master key version ${version} does not unwrap the data keys wrapped under it.`, options.keyStorePath);
        }
        throw error;
      }
    }
    const value = keyCheckValue(ring.get(version)!);
    // Another process may have recorded one meanwhile; it must agree.
    if (!sameHex(options.checks.putCheckIfAbsent(version, value), value)) {
      throw mismatch(`Master key version ${version} is not the key this data directory's data keys were wrapped with.`, options.keyStorePath);
    }
    recorded.push(version);
  }
  return { recorded };
}
