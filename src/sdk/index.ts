/** The typed client of the aiaas HTTP API (docs/api.md). */
export { AiaasClient, AliasesApi, AuditApi, BackupsApi, DatasetsApi, JobsApi, KeysApi, ModelsApi, TenantsApi, VersionsApi, parseJsonAllowingNonFinite, terminalJobEvents } from './client.ts';
export type {
  AiaasClientOptions,
  FetchFunction,
  ModelTarget,
  PushDatasetOptions,
  SignalOption,
  TfServingTarget,
  UploadSource,
  UploadVersionOptions,
  WatchOptions,
} from './client.ts';
export { AiaasApiError, AiaasConnectionError, apiErrorFrom, errorCodeHeader } from './errors.ts';
export type { ApiErrorCode } from './errors.ts';
export { ServerSentEventParser } from './sse.ts';
export type { ServerSentEvent } from './sse.ts';
export { packDirectory, packTar, parseTar, tarHeaderChecksum, TarError } from './tar.ts';
export type { TarEntry } from './tar.ts';
export * from './types.ts';
