/** The audit log: read, verify, export. */
import { Type } from '@sinclair/typebox';
import { AnyJson, Timestamp, content, type RouteSchema } from './common.ts';

export const AuditEntry = Type.Object({
  seq: Type.Integer(),
  tenantId: Type.Union([Type.String(), Type.Null()]),
  keyId: Type.Union([Type.String(), Type.Null()]),
  action: Type.String({ description: 'e.g. model.create, key.revoke' }),
  resource: Type.String(),
  outcome: Type.Union([Type.Literal('success'), Type.Literal('denied'), Type.Literal('error')]),
  ip: Type.String(),
  at: Timestamp,
  detail: AnyJson('What the action recorded (ids, names, sizes); an object'),
  prevHash: Type.String(),
  hash: Type.String(),
  model: Type.Union([Type.String(), Type.Null()], { description: 'The model the entry concerns, or null' }),
});

export const AuditVerification = Type.Union([
  Type.Object({ ok: Type.Literal(true), count: Type.Integer() }),
  Type.Object({ ok: Type.Literal(false), position: Type.Integer(), seq: Type.Integer(), reason: Type.String(), message: Type.Optional(Type.String()) }),
]);

const Digits = Type.String({ pattern: '^[0-9]{1,15}$' });

export const auditSchemas = {
  list: {
    querystring: Type.Object({ after: Type.Optional(Digits), limit: Type.Optional(Digits) }, { additionalProperties: false }),
    response: { 200: Type.Object({ entries: Type.Array(AuditEntry) }) },
  },
  verify: { response: { 200: AuditVerification } },
  export: {
    querystring: Type.Object({}, { additionalProperties: false }),
    response: { 200: content('application/x-ndjson', Type.String({ description: 'One AuditEntry JSON object per line' })) },
  },
} satisfies Record<string, RouteSchema>;
