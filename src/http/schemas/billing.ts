/** Plans, tenants' plans, quota status and webhooks (docs/billing.md). */
import { Type } from '@sinclair/typebox';
import { webhookEvents } from '../../platform/webhooks.ts';
import { content, NoBody, Nullable, Timestamp, type RouteSchema } from './common.ts';

const Micros = (description: string) => Type.Integer({ minimum: 0, description: `${description}, in integer micro-units of the plan's currency` });
const Count = (description: string) => Type.Integer({ minimum: 0, description });

const Caps = Type.Object({
  predictions: Type.Optional(Count('Inference items (batch elements) per month')),
  tokens: Type.Optional(Count('Language-model tokens (prompt + completion) per month')),
  trainingWorkerSeconds: Type.Optional(Count('Training worker-seconds per month')),
  spendMicros: Type.Optional(Micros('Charges (overage beyond the included amounts) per month')),
});

export const PlanSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }),
    currency: Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217; default USD' }),
    prices: Type.Object({
      perThousandPredictions: Micros('Price per 1,000 predictions'),
      perMillionPromptTokens: Micros('Price per 1M prompt tokens'),
      perMillionCompletionTokens: Micros('Price per 1M completion tokens'),
      perTrainingWorkerHour: Micros('Price per training worker-hour'),
      perGigabyteMonthStored: Micros('Price per GB-month stored'),
    }),
    included: Type.Object({
      predictions: Count('Predictions included per month'),
      promptTokens: Count('Prompt tokens included per month'),
      completionTokens: Count('Completion tokens included per month'),
      trainingWorkerSeconds: Count('Training worker-seconds included per month'),
      gigabyteMonthsStored: Count('GB-months of storage included per month'),
    }),
    hardCap: Caps,
    softCap: Caps,
    rateLimit: Type.Optional(Type.Object({ requestsPerSecond: Type.Number({ exclusiveMinimum: 0 }), burst: Type.Integer({ minimum: 1 }) })),
    limits: Type.Object({
      maxModels: Type.Optional(Type.Integer({ minimum: 1 })),
      maxDatasetBytes: Type.Optional(Type.Integer({ minimum: 1 })),
      maxConcurrentJobs: Type.Optional(Type.Integer({ minimum: 1 })),
      maxLlmTokens: Type.Optional(Type.Integer({ minimum: 1 })),
      maxLlmContext: Type.Optional(Type.Integer({ minimum: 1 })),
    }),
  },
  { title: 'Plan' },
);

/** What a client sends: every section optional (missing prices and included amounts are 0), nothing unknown. */
const PlanRequest = Type.Partial(PlanSchema, { title: 'PlanRequest', additionalProperties: false });

export const StoredPlanView = Type.Object({
  plan: PlanSchema,
  source: Type.Union([Type.Literal('file'), Type.Literal('api')], { description: 'file: from --plans (read-only here); api: made through this API' }),
  tenants: Type.Integer({ description: 'Tenants on the plan now' }),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

const PlanPeriodView = Type.Object({ plan: Type.String(), effectiveFrom: Timestamp, effectiveTo: Nullable(Timestamp) });

export const TenantPlanView = Type.Object({
  tenantId: Type.String(),
  plan: Nullable(Type.String({ description: 'null: no plan, unlimited' })),
  history: Type.Array(PlanPeriodView),
});

const Usage = Type.Object({
  predictions: Type.Integer(),
  promptTokens: Type.Integer(),
  completionTokens: Type.Integer(),
  trainingWorkerSeconds: Type.Integer(),
});

export const QuotaStatus = Type.Object({
  plan: Nullable(PlanSchema),
  period: Type.String({ description: 'UTC month, YYYY-MM' }),
  resetsInSeconds: Type.Integer(),
  used: Usage,
  spendMicros: Type.Integer({ description: 'Charges so far this period (overage beyond the included amounts)' }),
  remaining: Caps,
});

const WebhookEventSchema = Type.Union(webhookEvents.map((event) => Type.Literal(event)));
export const WebhookView = Type.Object({ url: Type.String(), events: Type.Array(WebhookEventSchema), createdAt: Timestamp });
export const WebhookDelivery = Type.Object({
  id: Type.String(),
  event: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
  attempts: Type.Integer(),
  lastError: Nullable(Type.String()),
  createdAt: Timestamp,
  deliveredAt: Nullable(Timestamp),
  nextAttemptAt: Timestamp,
});

const InvoiceLine = Type.Object({
  plan: Type.String(),
  from: Timestamp,
  to: Timestamp,
  item: Type.Union([Type.Literal('predictions'), Type.Literal('prompt-tokens'), Type.Literal('completion-tokens'), Type.Literal('training'), Type.Literal('storage')]),
  description: Type.String(),
  unit: Type.String(),
  used: Type.String({ description: 'Exact decimal of the unit (display: at most 3 places)' }),
  included: Type.String({ description: "The plan's included amount prorated to this segment" }),
  billable: Type.String(),
  unitPriceMicros: Type.Integer(),
  priceUnit: Type.String(),
  currency: Type.String(),
  amountMicros: Type.Integer({ description: 'Rounded half-up to a micro-unit' }),
});

const Totals = Type.Array(Type.Object({ currency: Type.String(), amountMicros: Type.Integer({ description: 'Integer sum of the lines in this currency' }) }));

export const InvoiceSchema = Type.Object(
  {
    tenantId: Type.String(),
    period: Type.String({ description: 'YYYY-MM (UTC)' }),
    status: Type.Union([Type.Literal('final'), Type.Literal('draft')]),
    from: Timestamp,
    to: Timestamp,
    lines: Type.Array(InvoiceLine),
    totals: Totals,
    unbilled: Type.Array(Type.Object({ from: Timestamp, to: Timestamp }), { description: 'Parts of the month without a plan (not billed)' }),
  },
  { title: 'Invoice' },
);

export const InvoiceSummary = Type.Object({ period: Type.String(), status: Type.Union([Type.Literal('final'), Type.Literal('draft')]), totals: Totals, lines: Type.Integer() });

const InvoiceQuery = Type.Object(
  {
    tenant: Type.Optional(Type.String({ maxLength: 128, description: "Operator admins: another tenant's invoices" })),
    format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv'), Type.Literal('html')], { description: 'Overrides the Accept header' })),
  },
  { additionalProperties: false },
);

/** No query parameters: an unknown one is a 400 naming it. */
const NoQuery = Type.Object({}, { additionalProperties: false });

const NameParams = Type.Object({ name: Type.String({ maxLength: 64 }) });
const IdParams = Type.Object({ id: Type.String({ maxLength: 128 }) });

export const billingSchemas = {
  listPlans: { querystring: NoQuery, response: { 200: Type.Object({ plans: Type.Array(StoredPlanView) }) } },
  getPlan: { querystring: NoQuery, params: NameParams, response: { 200: StoredPlanView } },
  createPlan: { querystring: NoQuery, documentedBody: { 'application/json': PlanRequest }, response: { 201: StoredPlanView } },
  putPlan: { querystring: NoQuery, params: NameParams, documentedBody: { 'application/json': PlanRequest }, response: { 200: StoredPlanView, 201: StoredPlanView } },
  deletePlan: { querystring: NoQuery, params: NameParams, response: { 204: NoBody } },
  getTenantPlan: { querystring: NoQuery, params: IdParams, response: { 200: TenantPlanView } },
  putTenantPlan: {
    querystring: NoQuery,
    params: IdParams,
    body: Type.Object({ plan: Nullable(Type.String({ maxLength: 64, description: 'A plan name; null removes the plan (unlimited)' })) }, { additionalProperties: false }),
    response: { 200: TenantPlanView },
  },
  quota: { querystring: NoQuery, response: { 200: QuotaStatus } },
  putWebhook: {
    querystring: NoQuery,
    body: Type.Object({ url: Type.String({ maxLength: 2048 }), events: Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: 16 }) }, { additionalProperties: false }),
    response: {
      200: Type.Object({ url: Type.String(), events: Type.Array(WebhookEventSchema), createdAt: Timestamp, secret: Type.String({ description: 'The signing secret; shown only in this answer' }) }),
    },
  },
  getWebhook: { querystring: NoQuery, response: { 200: WebhookView } },
  deleteWebhook: { querystring: NoQuery, response: { 204: NoBody } },
  webhookDeliveries: { querystring: NoQuery, response: { 200: Type.Object({ deliveries: Type.Array(WebhookDelivery) }) } },
  testWebhook: { querystring: NoQuery, response: { 202: Type.Object({ queued: Type.Boolean() }) } },
  listInvoices: {
    querystring: Type.Object({ tenant: Type.Optional(Type.String({ maxLength: 128 })) }, { additionalProperties: false }),
    response: { 200: Type.Object({ invoices: Type.Array(InvoiceSummary) }) },
  },
  getInvoice: {
    params: Type.Object({ period: Type.String({ maxLength: 16, description: 'YYYY-MM (UTC)' }) }),
    querystring: InvoiceQuery,
    response: {
      200: {
        content: {
          ...content('application/json', InvoiceSchema).content,
          ...content('text/csv', Type.String({ description: 'One row per line, then one total row per currency' })).content,
          ...content('text/html', Type.String({ description: 'A printable invoice (no scripts, no external assets)' })).content,
        },
      },
    },
  },
} satisfies Record<string, RouteSchema>;
