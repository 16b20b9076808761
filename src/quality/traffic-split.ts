/**
 * Canary splits: which of an alias's versions answers a request. Sticky per route key (the same
 * key always lands on the same version while the split is unchanged), random without one.
 */
import { createHash } from 'node:crypto';

/** A key's fixed point in [0, 1): the first 48 bits of SHA-256 over the scope and the key. */
export function routeKeyPoint(scope: string, routeKey: string): number {
  const digest = createHash('sha256').update(scope).update('\u0000').update(routeKey).digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/**
 * The target whose cumulative weight first exceeds `point` × total weight. Targets keep their
 * given order, so a key's version changes only when the split itself changes.
 */
export function chooseTarget<T extends { weight: number }>(targets: readonly T[], point: number): T {
  const total = targets.reduce((sum, target) => sum + target.weight, 0);
  let cumulative = 0;
  for (const target of targets) {
    cumulative += target.weight;
    if (point * total < cumulative) return target;
  }
  return targets[targets.length - 1]!;
}
