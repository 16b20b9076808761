/**
 * The audit trail: who did what to which resource, from where, with what outcome, appended to
 * the hash chain in `audit_log`. Routes opt in with `config: { audit: { action } }`; the entry is
 * written in `onSend`, before the response leaves, so a client that saw a response can rely on
 * its entry existing. Inference is recorded in the usage ledger instead (src/billing/ledger.ts).
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { canonicalJson, chainEntry, verifyChain, type AuditEntry, type ChainVerification, type JsonValue } from '../security/audit-chain.ts';
import type { AuditRecord, AuditRepository } from '../storage/index.ts';

export type AuditOutcome = 'success' | 'denied' | 'error';

export interface AuditEvent {
  tenantId: string | null;
  keyId: string | null;
  action: string;
  resource: string;
  outcome: AuditOutcome;
  ip: string;
  detail?: { readonly [key: string]: JsonValue };
  /** The model the action concerns, if any: keys restricted to some models read only their entries. */
  model?: string | null;
}

/** An entry as the API returns it. */
export interface AuditEntryView {
  seq: number;
  tenantId: string | null;
  keyId: string | null;
  action: string;
  resource: string;
  outcome: string;
  ip: string;
  at: string;
  detail: unknown;
  prevHash: string;
  hash: string;
  /** The model the entry concerns, or null. */
  model: string | null;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    audit?: { action: string };
  }
  interface FastifyRequest {
    /** Handlers refine what the entry names (e.g. the id created) and add detail. */
    audit: { resource?: string; detail?: Record<string, JsonValue>; model?: string } | undefined;
  }
}

function toChainEntry(record: AuditRecord): AuditEntry {
  let detail: JsonValue;
  try {
    detail = JSON.parse(record.detailJson) as JsonValue;
  } catch {
    // Unparseable detail was altered; keeping the raw text makes verification report it.
    detail = record.detailJson;
  }
  return {
    seq: record.seq,
    tenantId: record.tenantId,
    keyId: record.keyId,
    action: record.action,
    resource: record.resource,
    outcome: record.outcome,
    ip: record.ip,
    at: record.at,
    detail,
    prevHash: record.prevHash,
    hash: record.hash,
    model: record.model,
  };
}

export function auditEntryView(record: AuditRecord): AuditEntryView {
  const entry = toChainEntry(record);
  return { ...entry, resource: entry.resource ?? '', ip: entry.ip ?? '', model: record.model };
}

export class AuditLogger {
  readonly #repository: AuditRepository;
  readonly #now: () => Date;

  constructor(repository: AuditRepository, options: { now?: () => Date } = {}) {
    this.#repository = repository;
    this.#now = options.now ?? (() => new Date());
  }

  /** Appends one entry atomically after the current tail. */
  async record(event: AuditEvent): Promise<AuditRecord> {
    const at = this.#now().toISOString();
    const detail = event.detail ?? {};
    return this.#repository.appendWith((previous) => {
      const entry = chainEntry(previous, {
        tenantId: event.tenantId,
        keyId: event.keyId,
        action: event.action,
        resource: event.resource,
        outcome: event.outcome,
        ip: event.ip,
        at,
        detail,
        model: event.model ?? null,
      });
      return {
        tenantId: entry.tenantId,
        keyId: entry.keyId,
        action: entry.action,
        resource: entry.resource ?? '',
        outcome: entry.outcome,
        ip: entry.ip ?? '',
        at: entry.at,
        detailJson: canonicalJson(entry.detail),
        prevHash: entry.prevHash,
        hash: entry.hash,
        model: event.model ?? null,
      };
    });
  }

  /** Walks the whole chain; reports the first altered, deleted or reordered entry by position. */
  async verify(): Promise<ChainVerification> {
    const records = await this.#repository.listAll();
    return verifyChain(records.map(toChainEntry));
  }

  /**
   * Entries after `afterSeq`, of one tenant or (undefined) of all; with `models` (a tenant's only),
   * just the entries concerning those models.
   */
  async list(tenantId: string | undefined, options: { afterSeq?: number; limit?: number; models?: readonly string[] } = {}): Promise<AuditEntryView[]> {
    const limit = Math.max(1, Math.min(1000, Math.trunc(options.limit ?? 100)));
    const page = { ...(options.afterSeq === undefined ? {} : { afterSeq: options.afterSeq }), limit };
    const records =
      tenantId === undefined
        ? await this.#repository.listAll(page)
        : await this.#repository.list(tenantId, { ...page, ...(options.models === undefined ? {} : { models: options.models }) });
    return records.map(auditEntryView);
  }
}

export function outcomeOf(statusCode: number): AuditOutcome {
  if (statusCode < 400) return 'success';
  if (statusCode === 401 || statusCode === 403) return 'denied';
  return 'error';
}

const modelRoutePrefix = '/api/v1/models/:name';

/**
 * The model an entry concerns: what the handler named, else the `:name` of a model route, so
 * refused and failed attempts (thrown before the handler names anything) are attributed too.
 */
function modelOf(request: FastifyRequest): string | null {
  if (request.audit?.model !== undefined) return request.audit.model;
  const url = request.routeOptions.url;
  if (url === modelRoutePrefix || url?.startsWith(`${modelRoutePrefix}/`) === true) {
    const name = (request.params as Record<string, unknown> | undefined)?.name;
    if (typeof name === 'string') return name;
  }
  return null;
}

async function recordRequest(logger: AuditLogger, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const action = request.routeOptions.config.audit?.action;
  if (action === undefined) return;
  const principal = request.principal;
  try {
    await logger.record({
      tenantId: principal?.tenantId ?? null,
      keyId: principal?.keyId ?? null,
      action,
      resource: request.audit?.resource ?? request.url.split('?')[0]!,
      outcome: outcomeOf(reply.statusCode),
      ip: request.ip,
      detail: { method: request.method, status: reply.statusCode, requestId: request.id, ...request.audit?.detail },
      model: modelOf(request),
    });
  } catch (error) {
    // Losing an audit entry must be loud, but must not turn a done action into a reported failure.
    request.log.error({ err: error, action }, 'could not append to the audit log');
  }
}

/**
 * The onSend hook goes on audited routes only (those registered after this plugin), so the
 * inference path and other unaudited routes do not run it at all.
 */
const plugin: FastifyPluginAsync<{ logger: AuditLogger }> = async (app: FastifyInstance, options) => {
  app.decorateRequest('audit', undefined);
  const onSend = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    await recordRequest(options.logger, request, reply);
    return payload;
  };
  app.addHook('onRoute', (route) => {
    if (route.config?.audit === undefined) return;
    const existing = route.onSend === undefined ? [] : Array.isArray(route.onSend) ? route.onSend : [route.onSend];
    route.onSend = [...existing, onSend];
  });
};
(plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
export const auditPlugin = plugin;
