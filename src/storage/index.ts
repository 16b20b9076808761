export * from './artifact-store.ts';
export * from './database.ts';
export * from './migrations.ts';
export * from './repositories/index.ts';
export type * from './schema.ts';
export { inTransaction, newId, type Page } from './support.ts';
export * from './text-cipher.ts';
export * from './seal-tenant-text.ts';
