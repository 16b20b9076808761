import { describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import {
  modelAllowed,
  modelsWithin,
  parseRole,
  scopeWithin,
  permissions,
  permissionsOf,
  requireModelAllowed,
  requirePermission,
  roleHasPermission,
  roles,
} from '../../src/security/roles.ts';
import type { Permission, Role } from '../../src/security/roles.ts';

const expected: Record<Role, readonly Permission[]> = {
  admin: permissions,
  developer: [
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
  ],
  viewer: ['usage:read', 'metrics:read', 'datasets:read', 'models:read', 'jobs:read'],
  inference: ['inference'],
};

describe('roles', () => {
  it('grants exactly the documented permission matrix', () => {
    for (const role of roles) {
      for (const permission of permissions) {
        expect(roleHasPermission(role, permission), `${role} / ${permission}`).toBe(expected[role].includes(permission));
      }
      expect([...permissionsOf(role)].sort()).toEqual([...expected[role]].sort());
    }
  });

  it('keeps the dangerous permissions to admin', () => {
    for (const permission of ['tenants:manage', 'keys:manage', 'audit:read'] as const) {
      expect(roles.filter((role) => roleHasPermission(role, permission))).toEqual(['admin']);
    }
  });

  it('requirePermission throws FORBIDDEN naming the role and the missing permission', () => {
    expect(() => requirePermission('developer', 'models:write')).not.toThrow();
    try {
      requirePermission('viewer', 'inference');
      expect.unreachable();
    } catch (error) {
      expect(AiaasError.isInstance(error)).toBe(true);
      const aiaasError = error as AiaasError;
      expect(aiaasError.code).toBe('FORBIDDEN');
      expect(aiaasError.status).toBe(403);
      expect(aiaasError.message).toContain('viewer');
      expect(aiaasError.message).toContain('inference');
    }
  });

  it('parses roles and rejects unknown ones', () => {
    expect(parseRole('viewer')).toBe('viewer');
    expect(() => parseRole('root')).toThrow(/admin, developer, viewer, inference/);
  });
});

describe('modelAllowed', () => {
  it('treats null as every model and [] as none', () => {
    expect(modelAllowed(null, 'anything')).toBe(true);
    expect(modelAllowed([], 'anything')).toBe(false);
  });

  it('matches by model name, ignoring version and alias suffixes', () => {
    expect(modelAllowed(['mnist'], 'mnist')).toBe(true);
    expect(modelAllowed(['mnist'], 'mnist@3')).toBe(true);
    expect(modelAllowed(['mnist'], 'mnist@production')).toBe(true);
    expect(modelAllowed(['mnist'], 'mnist-large')).toBe(false);
    expect(modelAllowed(['mnist'], 'mnis')).toBe(false);
    expect(modelAllowed(['*'], 'whatever')).toBe(true);
    expect(() => requireModelAllowed(['a'], 'b')).toThrow(/"b"/);
  });
});

describe('scopeWithin (issue 7, finding 5)', () => {
  it('needs both the models and the permissions to be subsets', () => {
    const restrictedAdmin = { role: 'admin', allowedModels: ['a'] } as const;
    expect(scopeWithin({ role: 'developer', allowedModels: ['a'] }, restrictedAdmin)).toBe(true);
    expect(scopeWithin({ role: 'admin', allowedModels: [] }, restrictedAdmin)).toBe(true);
    expect(scopeWithin({ role: 'viewer', allowedModels: null }, restrictedAdmin)).toBe(false);
    expect(scopeWithin({ role: 'viewer', allowedModels: ['*'] }, restrictedAdmin)).toBe(false);
    expect(scopeWithin({ role: 'viewer', allowedModels: ['a', 'b'] }, restrictedAdmin)).toBe(false);
    // Permissions: a developer's scope holds a viewer's and an inference key's, not an admin's.
    const developer = { role: 'developer', allowedModels: ['a'] } as const;
    expect(scopeWithin({ role: 'admin', allowedModels: ['a'] }, developer)).toBe(false);
    expect(scopeWithin({ role: 'viewer', allowedModels: ['a'] }, developer)).toBe(true);
    expect(scopeWithin({ role: 'inference', allowedModels: ['a'] }, developer)).toBe(true);
    expect(scopeWithin({ role: 'developer', allowedModels: ['a'] }, { role: 'viewer', allowedModels: ['a'] })).toBe(false);
    expect(scopeWithin({ role: 'inference', allowedModels: ['a'] }, { role: 'viewer', allowedModels: ['a'] })).toBe(false);
  });

  it('treats null and "*" as every model', () => {
    expect(modelsWithin(['x'], null)).toBe(true);
    expect(modelsWithin(null, ['*'])).toBe(true);
    expect(modelsWithin(null, ['x'])).toBe(false);
    expect(modelsWithin(['*'], ['x', 'y'])).toBe(false);
    expect(modelsWithin([], [])).toBe(true);
  });
});
