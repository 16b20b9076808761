import { AiaasError, quoteForError } from '../errors.ts';

export const roles = ['admin', 'developer', 'viewer', 'inference'] as const;
export type Role = (typeof roles)[number];

export const permissions = [
  'tenants:manage',
  'keys:manage',
  'audit:read',
  'usage:read',
  'metrics:read',
  'datasets:read',
  'datasets:write',
  'models:read',
  'models:write',
  'models:download',
  'aliases:write',
  'jobs:read',
  'jobs:write',
  'inference',
] as const;
export type Permission = (typeof permissions)[number];

/**
 * - admin: everything, including tenants, API keys and the audit log.
 * - developer: builds and ships models: datasets, models, aliases, jobs read and write,
 *   weight download, inference, usage and metrics; cannot manage keys or read the audit log.
 * - viewer: read-only metadata (datasets, models, jobs, usage, metrics). No inference and no
 *   weight download: both hand out what the model computes or is, which a dashboard
 *   account should not be able to exfiltrate.
 * - inference: only calls models; meant for keys embedded in applications.
 */
const rolePermissions: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  admin: new Set(permissions),
  developer: new Set<Permission>([
    'usage:read',
    'metrics:read',
    'datasets:read',
    'datasets:write',
    'models:read',
    'models:write',
    'models:download',
    'aliases:write',
    'jobs:read',
    'jobs:write',
    'inference',
  ]),
  // Metrics of the caller's own tenant say what usage does, per second: the same readers.
  viewer: new Set<Permission>(['usage:read', 'metrics:read', 'datasets:read', 'models:read', 'jobs:read']),
  inference: new Set<Permission>(['inference']),
};

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (roles as readonly string[]).includes(value);
}

export function parseRole(value: unknown): Role {
  if (isRole(value)) return value;
  throw new AiaasError('INVALID_REQUEST', `Unknown role ${quoteForError(value)}; expected one of: ${roles.join(', ')}.`);
}

export function permissionsOf(role: Role): readonly Permission[] {
  return permissions.filter((permission) => rolePermissions[role].has(permission));
}

export function roleHasPermission(role: Role, permission: Permission): boolean {
  return rolePermissions[role]?.has(permission) ?? false;
}

export function requirePermission(role: Role, permission: Permission): void {
  if (!roleHasPermission(role, permission)) {
    throw new AiaasError('FORBIDDEN', `This API key's role "${role}" lacks the permission "${permission}".`, {
      details: { role, permission },
    });
  }
}

/**
 * `allowedModels` null means every model; an empty list means none. Entries are model
 * names; a reference like `name@3` or `name@production` is checked by its name, since a
 * key scoped to a model may use any of its versions and aliases. The entry "*" allows all.
 */
export function modelAllowed(allowedModels: readonly string[] | null, modelReference: string): boolean {
  if (allowedModels === null) return true;
  const at = modelReference.indexOf('@');
  const modelName = at === -1 ? modelReference : modelReference.slice(0, at);
  return allowedModels.some((allowed) => allowed === '*' || allowed === modelName);
}

export function requireModelAllowed(allowedModels: readonly string[] | null, modelReference: string): void {
  if (!modelAllowed(allowedModels, modelReference)) {
    throw new AiaasError('FORBIDDEN', `This API key is not allowed to use the model "${modelReference}".`, {
      details: { model: modelReference },
    });
  }
}

/** True when the list reaches every model: null, or any list holding "*". */
function allowsEveryModel(allowedModels: readonly string[] | null): allowedModels is null {
  return allowedModels === null || allowedModels.includes('*');
}

/** Whether every model `inner` reaches is one `outer` reaches ("*" and null reach all). */
export function modelsWithin(inner: readonly string[] | null, outer: readonly string[] | null): boolean {
  if (allowsEveryModel(outer)) return true;
  if (allowsEveryModel(inner)) return false;
  return inner.every((model) => outer.includes(model));
}

/** What one key may do: its role's permissions over its allowed models. */
export interface KeyScope {
  readonly role: Role;
  readonly allowedModels: readonly string[] | null;
}

/**
 * Whether `inner` grants nothing that `outer` lacks: its models and its permissions are both
 * subsets. A key manages (sees, revokes, creates) only keys within its own scope, so a key
 * restricted to some models can never act on an unrestricted or more powerful one.
 */
export function scopeWithin(inner: KeyScope, outer: KeyScope): boolean {
  return modelsWithin(inner.allowedModels, outer.allowedModels) && permissionsOf(inner.role).every((permission) => roleHasPermission(outer.role, permission));
}
