/** The audit log (read, verify, export) and usage counters. */
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

export const UsageRow = Type.Object({ model: Type.String(), day: Type.String({ description: 'YYYY-MM-DD (UTC)' }), requests: Type.Integer() });

export const TokenUsageRow = Type.Object({
  model: Type.String(),
  version: Type.Integer(),
  keyId: Type.String(),
  day: Type.String({ description: 'YYYY-MM-DD (UTC)' }),
  requests: Type.Integer(),
  promptTokens: Type.Integer(),
  completionTokens: Type.Integer(),
});

const Digits = Type.String({ pattern: '^[0-9]{1,15}$' });
const Day = Type.String({ description: 'YYYY-MM-DD' });

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
  usage: {
    querystring: Type.Object({ from: Type.Optional(Day), to: Type.Optional(Day), model: Type.Optional(Type.String()) }, { additionalProperties: false }),
    response: { 200: Type.Object({ usage: Type.Array(UsageRow), tokens: Type.Array(TokenUsageRow, { description: 'Language models: requests and tokens per key, version and day' }) }) },
  },
} satisfies Record<string, RouteSchema>;
