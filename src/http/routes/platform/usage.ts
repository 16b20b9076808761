/** The usage ledger's report: sums grouped and filtered as asked, as JSON or (Accept: text/csv) CSV. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { LedgerDimension, UsageGroup } from '../../../billing/ledger.ts';
import { AiaasError } from '../../../errors.ts';
import { authorize, type Principal } from '../../auth.ts';
import { usageDimensions, usageSchemas } from '../../schemas/usage.ts';
import { readQuery, type PlatformRouteOptions } from './support.ts';

const dayPattern = /^\d{4}-\d{2}-\d{2}$/;
const instantPattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const periods: readonly LedgerDimension[] = ['day', 'hour', 'minute'];
const defaultGroupBy: readonly LedgerDimension[] = ['model', 'day'];

/** Columns of the CSV, in order: the groups asked for, then every unit. */
const unitColumns = [
  'requests',
  'failedRequests',
  'items',
  'promptTokens',
  'completionTokens',
  'computeMs',
  'queueMs',
  'bytesIn',
  'bytesOut',
  'trainingSampleEpochs',
  'trainingWorkerSeconds',
  'storedByteHours',
] as const satisfies readonly (keyof UsageGroup)[];
const groupColumns: Record<LedgerDimension, keyof UsageGroup> = { model: 'model', key: 'keyId', version: 'version', protocol: 'protocol', day: 'day', hour: 'hour', minute: 'minute' };

function parseGroupBy(value: string | undefined): LedgerDimension[] {
  if (value === undefined) return [...defaultGroupBy];
  const dimensions: LedgerDimension[] = [];
  for (const part of value.split(',').map((item) => item.trim()).filter((item) => item !== '')) {
    if (!(usageDimensions as readonly string[]).includes(part)) {
      throw new AiaasError('INVALID_REQUEST', `'groupBy' takes ${usageDimensions.join(', ')}; '${part}' is none of them`, { details: { parameter: 'groupBy', allowed: [...usageDimensions] } });
    }
    if (!dimensions.includes(part as LedgerDimension)) dimensions.push(part as LedgerDimension);
  }
  if (dimensions.filter((dimension) => periods.includes(dimension)).length > 1) {
    throw new AiaasError('INVALID_REQUEST', "'groupBy' takes at most one of day, hour and minute", { details: { parameter: 'groupBy' } });
  }
  return dimensions;
}

/** A bound: a UTC day (its start; for `to`, the next day's start, so the day is included) or an instant. */
function parseBound(value: string | undefined, name: 'from' | 'to'): Date | undefined {
  if (value === undefined) return undefined;
  const invalid = (): AiaasError =>
    new AiaasError('INVALID_REQUEST', `'${name}' must be a date YYYY-MM-DD or an ISO 8601 instant such as 2026-01-31T12:00:00Z`, { details: { parameter: name } });
  if (dayPattern.test(value)) {
    const start = new Date(`${value}T00:00:00Z`);
    if (Number.isNaN(start.getTime()) || start.toISOString().slice(0, 10) !== value) throw invalid();
    return name === 'to' ? new Date(start.getTime() + 86_400_000) : start;
  }
  if (!instantPattern.test(value)) throw invalid();
  const instant = new Date(value);
  if (Number.isNaN(instant.getTime())) throw invalid();
  return instant;
}

/** A key restricted to some models reads only their rows: other names must not leak through usage. */
function visibleModels(principal: Principal): readonly string[] | undefined {
  const allowed = principal.allowedModels;
  return allowed === null || allowed.includes('*') ? undefined : allowed;
}

function csvField(value: string | number | undefined): string {
  if (value === undefined) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function toCsv(groupBy: readonly LedgerDimension[], rows: readonly UsageGroup[]): string {
  const columns = [...groupBy.map((dimension) => groupColumns[dimension]), ...unitColumns];
  const lines = [columns.join(',')];
  for (const row of rows) lines.push(columns.map((column) => csvField(row[column])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

function wantsCsv(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return accept.split(',').some((part) => part.trim().toLowerCase().startsWith('text/csv'));
}

export async function usageRoutes(app: FastifyInstance, { context }: PlatformRouteOptions): Promise<void> {
  app.get('/usage', { schema: usageSchemas.report }, async (request, reply) => {
    const principal = authorize(request, 'usage:read');
    const query = readQuery(request, ['groupBy', 'from', 'to', 'model', 'key', 'version', 'protocol']);
    const groupBy = parseGroupBy(query.groupBy);
    const from = parseBound(query.from, 'from');
    const to = parseBound(query.to, 'to');
    if (from !== undefined && to !== undefined && from.getTime() > to.getTime()) {
      throw new AiaasError('INVALID_REQUEST', "'from' must not be after 'to'", { details: { parameter: 'from' } });
    }
    const version = query.version === undefined ? undefined : Number(query.version);
    if (version !== undefined && !Number.isSafeInteger(version)) throw new AiaasError('INVALID_REQUEST', "'version' must be an integer", { details: { parameter: 'version' } });
    const models = visibleModels(principal);
    const rows = await context.ledger.query(principal.tenantId, {
      groupBy,
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
      ...(query.model === undefined ? {} : { model: query.model }),
      ...(query.key === undefined ? {} : { keyId: query.key }),
      ...(version === undefined ? {} : { version }),
      ...(query.protocol === undefined ? {} : { protocol: query.protocol }),
      ...(models === undefined ? {} : { models }),
    });
    if (wantsCsv(request)) {
      return reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="aiaas-usage.csv"').send(toCsv(groupBy, rows));
    }
    return { groupBy, from: from?.toISOString() ?? null, to: to?.toISOString() ?? null, usage: rows };
  });
}
