/** `/me`, tenants and API keys. */
import { Type } from '@sinclair/typebox';
import { permissions, roles } from '../../security/roles.ts';
import { NoBody, Nullable, Timestamp, type RouteSchema } from './common.ts';

export const RoleSchema = Type.Union(roles.map((role) => Type.Literal(role)));
export const PermissionSchema = Type.Union(permissions.map((permission) => Type.Literal(permission)));
const ModelAllowList = Nullable(Type.Array(Type.String(), { description: 'Model names the key may use; null: every model' }));

export const Tenant = Type.Object({ id: Type.String(), name: Type.String(), createdAt: Timestamp });

export const Me = Type.Object({
  tenant: Type.Object({
    id: Type.String(),
    name: Type.String(),
    operator: Type.Boolean({ description: "The operator tenant's admins manage other tenants" }),
  }),
  key: Type.Object({
    id: Type.String(),
    name: Type.String(),
    prefix: Nullable(Type.String()),
    role: RoleSchema,
    allowedModels: ModelAllowList,
    expiresAt: Nullable(Timestamp),
  }),
  permissions: Type.Array(PermissionSchema),
});

export const CreateTenantRequest = Type.Object({ name: Type.String() }, { additionalProperties: false });

export const CreatedTenant = Type.Object({
  tenant: Tenant,
  adminKey: Type.Object({
    id: Type.String(),
    key: Type.String({ description: 'The secret; shown only in this answer' }),
    prefix: Type.String(),
    role: RoleSchema,
  }),
});

export const ApiKey = Type.Object({
  id: Type.String(),
  name: Type.String(),
  prefix: Type.String(),
  role: RoleSchema,
  allowedModels: ModelAllowList,
  createdAt: Timestamp,
  expiresAt: Nullable(Timestamp),
  revokedAt: Nullable(Timestamp),
  lastUsedAt: Nullable(Timestamp),
});

export const CreateKeyRequest = Type.Object(
  {
    name: Type.String(),
    role: RoleSchema,
    allowedModels: Type.Optional(ModelAllowList),
    expiresAt: Type.Optional(Nullable(Type.String({ description: 'ISO 8601; in the future' }))),
  },
  { additionalProperties: false },
);

export const CreatedKey = Type.Composite([ApiKey, Type.Object({ key: Type.String({ description: 'The secret; shown only in this answer' }) })]);

const IdParams = Type.Object({ id: Type.String() });

export const identitySchemas = {
  me: { response: { 200: Me } },
  createTenant: { body: CreateTenantRequest, response: { 201: CreatedTenant } },
  listTenants: { response: { 200: Type.Object({ tenants: Type.Array(Tenant) }) } },
  deleteTenant: { params: IdParams, response: { 204: NoBody } },
  createKey: { body: CreateKeyRequest, response: { 201: CreatedKey } },
  listKeys: { response: { 200: Type.Object({ keys: Type.Array(ApiKey) }) } },
  revokeKey: { params: IdParams, response: { 204: NoBody } },
} satisfies Record<string, RouteSchema>;
