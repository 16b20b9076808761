/** Server-made backups (operator admins). */
import { Type } from '@sinclair/typebox';
import { Nullable, Timestamp, type RouteSchema } from './common.ts';

export const ServerBackup = Type.Object({
  name: Type.String({ description: 'aiaas-backup-<UTC time>, chosen by the server' }),
  createdAt: Timestamp,
  tenants: Type.Integer(),
  artifacts: Type.Integer(),
  bytes: Type.Integer(),
  pruned: Type.Array(Type.String(), { description: 'Older backups that retention removed after this one' }),
});

export const BackupListing = Type.Object({
  name: Type.String(),
  state: Type.Union([Type.Literal('complete'), Type.Literal('incomplete')], {
    description: 'complete: a whole manifest (file hashes are checked by aiaas backup verify); incomplete: interrupted or damaged',
  }),
  createdAt: Nullable(Timestamp),
  tenants: Nullable(Type.Integer()),
  artifacts: Nullable(Type.Integer()),
  bytes: Nullable(Type.Integer()),
  problem: Nullable(Type.String()),
});

export const backupSchemas = {
  create: {
    querystring: Type.Object({}, { additionalProperties: false }),
    response: { 201: ServerBackup },
  },
  list: {
    querystring: Type.Object({}, { additionalProperties: false }),
    response: { 200: Type.Object({ backups: Type.Array(BackupListing) }) },
  },
} satisfies Record<string, RouteSchema>;
