/** The usage ledger's report: `GET /api/v1/usage`, as JSON or CSV. */
import { Type } from '@sinclair/typebox';
import type { RouteSchema } from './common.ts';

export const usageDimensions = ['model', 'key', 'version', 'protocol', 'day', 'hour', 'minute'] as const;

export const UsageGroupRow = Type.Object({
  model: Type.Optional(Type.String({ description: "With groupBy model; '' for dataset storage" })),
  keyId: Type.Optional(Type.String({ description: "With groupBy key; '' where no key acted (storage samples)" })),
  version: Type.Optional(Type.Integer({ description: 'With groupBy version; 0 where none applies' })),
  protocol: Type.Optional(Type.String({ description: 'With groupBy protocol: v2, tfserving, openai, ollama, training, storage, legacy' })),
  day: Type.Optional(Type.String({ description: 'With groupBy day: YYYY-MM-DD (UTC)' })),
  hour: Type.Optional(Type.String({ description: 'With groupBy hour: YYYY-MM-DDTHH:00Z' })),
  minute: Type.Optional(Type.String({ description: 'With groupBy minute: YYYY-MM-DDTHH:MMZ' })),
  requests: Type.Integer({ description: 'Answered requests (billed)' }),
  failedRequests: Type.Integer({ description: 'Requests that reached a model and failed (never billed)' }),
  items: Type.Integer({ description: 'Batch elements of the answered requests' }),
  promptTokens: Type.Integer(),
  completionTokens: Type.Integer(),
  computeMs: Type.Number({ description: 'Worker milliseconds (a request’s share of its batch’s run)' }),
  queueMs: Type.Number({ description: 'Milliseconds waited in model queues' }),
  bytesIn: Type.Integer(),
  bytesOut: Type.Integer(),
  trainingSampleEpochs: Type.Integer(),
  trainingWorkerSeconds: Type.Number(),
  storedByteHours: Type.Integer(),
});

const UsageReport = Type.Object({
  groupBy: Type.Array(Type.Union(usageDimensions.map((dimension) => Type.Literal(dimension)))),
  from: Type.Union([Type.String(), Type.Null()], { description: 'Inclusive start (ISO 8601), or null' }),
  to: Type.Union([Type.String(), Type.Null()], { description: 'Exclusive end (ISO 8601), or null' }),
  usage: Type.Array(UsageGroupRow),
});

export const usageSchemas = {
  report: {
    querystring: Type.Object(
      {
        groupBy: Type.Optional(Type.String({ description: `Comma-separated: ${usageDimensions.join(', ')} (at most one of day, hour, minute). Default model,day` })),
        from: Type.Optional(Type.String({ description: 'YYYY-MM-DD (start of that UTC day) or an ISO 8601 instant; inclusive' })),
        to: Type.Optional(Type.String({ description: 'YYYY-MM-DD (through the end of that UTC day) or an ISO 8601 instant; exclusive' })),
        model: Type.Optional(Type.String()),
        key: Type.Optional(Type.String({ description: 'An API key id' })),
        version: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$' })),
        protocol: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
    response: {
      200: {
        content: {
          'application/json': { schema: UsageReport },
          'text/csv': { schema: Type.String({ description: 'Header row, then one row per group (Accept: text/csv)' }) },
        },
      },
    },
  },
} satisfies Record<string, RouteSchema>;
