/**
 * Webhooks: one URL per tenant that hears the events it subscribed to. Each delivery is a POST of
 * JSON signed with the tenant's secret (`x-aiaas-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
 * "<t>.<body>">`), kept in `webhook_deliveries` until delivered or out of attempts, and retried with
 * exponential backoff, so a restart resumes pending deliveries. The URL obeys the model pulls' SSRF
 * rules (src/platform/pull-policy.ts): checked when set and again, address by address, at every
 * delivery, and the request goes to exactly the address that was checked. Redirects are not followed.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { Kysely } from 'kysely';
import { AiaasError } from '../errors.ts';
import type { Schema } from '../storage/schema.ts';
import { newId } from '../storage/support.ts';
import { checkAddresses, checkUrl, normalizeHost, type PullPolicy } from './pull-policy.ts';

/** Events a webhook may subscribe to; a feature that sends a new event adds it here. */
export const webhookEvents = ['quota.soft_cap_crossed', 'drift.detected', 'webhook.test'] as const;
export type WebhookEvent = (typeof webhookEvents)[number];

export const signatureHeader = 'x-aiaas-signature';

/** The narrow interface features use to tell a tenant something happened. */
export interface WebhookSender {
  /** Queues the event for the tenant's webhook if it subscribed to it; a tenant without one: nothing. */
  notify(tenantId: string, event: WebhookEvent, payload: Record<string, unknown>): Promise<void>;
}

export interface WebhookView {
  url: string;
  events: WebhookEvent[];
  createdAt: string;
}

/** Seals the signing secret under the tenant's key (TenantTextCipher). */
export interface SecretCipher {
  seal(tenantId: string, place: { table: string; column: string; rowId: string }, plaintext: string): Promise<string>;
  open(tenantId: string, place: { table: string; column: string; rowId: string }, stored: string): Promise<string>;
}

export interface WebhookServiceOptions {
  db: Kysely<Schema>;
  cipher: SecretCipher;
  policy: Pick<PullPolicy, 'allowedHosts' | 'allowPrivate'>;
  now: () => Date;
  /** First retry after this long, doubling each attempt (capped at an hour). */
  retryBaseMs?: number;
  maxAttempts?: number;
  /** How long one delivery attempt may take. */
  timeoutMs?: number;
  /** How often the queue is polled for due retries (new events are sent at once). */
  pollMs?: number;
  onError?: (error: unknown, what: string) => void;
}

/** The header value for `body` signed at `timestamp` (unix seconds). */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

const secretPlace = (tenantId: string): { table: string; column: string; rowId: string } => ({ table: 'webhooks', column: 'secret_text', rowId: tenantId });

/** The pull policy's refusal, reworded for webhooks (same checks, webhook settings). */
function refused(error: unknown): AiaasError {
  if (!AiaasError.isInstance(error) || error.code !== 'PULL_SOURCE_REFUSED') return AiaasError.isInstance(error) ? error : new AiaasError('WEBHOOK_URL_REFUSED', 'webhook URL refused');
  const details = { ...error.details };
  const host = String(details['host'] ?? '');
  const message =
    details['reason'] === 'host-not-allowed'
      ? `host ${host} is not in this server's webhook allow-list (webhookAllowedHosts)`
      : details['reason'] === 'private-address'
        ? `host ${host} resolves to ${String(details['address'])}, a private, loopback, link-local or otherwise special address; webhooks to it need the host in webhookAllowedHosts or webhookAllowPrivate`
        : 'webhook URLs must be http or https, without credentials';
  return new AiaasError('WEBHOOK_URL_REFUSED', message, { details });
}

export function parseWebhookUrl(value: unknown): URL {
  if (typeof value !== 'string' || value.length > 2048) throw new AiaasError('INVALID_REQUEST', "'url' must be an http(s) URL of at most 2048 characters", { details: { field: 'url' } });
  try {
    return new URL(value);
  } catch {
    throw new AiaasError('INVALID_REQUEST', "'url' is not a valid URL", { details: { field: 'url' } });
  }
}

export function parseWebhookEvents(value: unknown): WebhookEvent[] {
  if (!Array.isArray(value) || value.length === 0) throw new AiaasError('INVALID_REQUEST', `'events' must be a non-empty array of: ${webhookEvents.join(', ')}`, { details: { field: 'events' } });
  const events = new Set<WebhookEvent>();
  for (const entry of value) {
    if (typeof entry !== 'string' || !(webhookEvents as readonly string[]).includes(entry)) {
      throw new AiaasError('INVALID_REQUEST', `unknown event ${JSON.stringify(String(entry).slice(0, 60))}; known events: ${webhookEvents.join(', ')}`, { details: { field: 'events' } });
    }
    events.add(entry as WebhookEvent);
  }
  return [...events].sort();
}

export class WebhookService implements WebhookSender {
  readonly #db: Kysely<Schema>;
  readonly #cipher: SecretCipher;
  readonly #policy: PullPolicy;
  readonly #now: () => Date;
  readonly #retryBaseMs: number;
  readonly #maxAttempts: number;
  readonly #timeoutMs: number;
  readonly #onError: (error: unknown, what: string) => void;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;

  constructor(options: WebhookServiceOptions) {
    this.#db = options.db;
    this.#cipher = options.cipher;
    this.#policy = { allowedHosts: options.policy.allowedHosts, allowPrivate: options.policy.allowPrivate, maxRedirects: 0 };
    this.#now = options.now;
    this.#retryBaseMs = options.retryBaseMs ?? 5000;
    this.#maxAttempts = options.maxAttempts ?? 8;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#onError = options.onError ?? (() => undefined);
    const pollMs = options.pollMs ?? 1000;
    if (pollMs > 0) {
      this.#timer = setInterval(() => this.kick(), pollMs);
      this.#timer.unref();
    }
  }

  /** Sets (or replaces) the tenant's webhook; the returned secret is shown this once. */
  async set(tenantId: string, input: { url: unknown; events: unknown }): Promise<WebhookView & { secret: string }> {
    const url = parseWebhookUrl(input.url);
    const events = parseWebhookEvents(input.events);
    await this.#checkDestination(url);
    const secret = `whsec_${randomBytes(32).toString('base64url')}`;
    const sealed = await this.#cipher.seal(tenantId, secretPlace(tenantId), secret);
    const createdAt = this.#now().toISOString();
    const row = { tenant_id: tenantId, url: url.href, events_json: JSON.stringify(events), secret_text: sealed, created_at: createdAt };
    await this.#db
      .insertInto('webhooks')
      .values(row)
      .onConflict((conflict) => conflict.column('tenant_id').doUpdateSet({ url: row.url, events_json: row.events_json, secret_text: row.secret_text, created_at: createdAt }))
      .execute();
    return { url: url.href, events, createdAt, secret };
  }

  async get(tenantId: string): Promise<WebhookView | undefined> {
    const row = await this.#db.selectFrom('webhooks').select(['url', 'events_json', 'created_at']).where('tenant_id', '=', tenantId).executeTakeFirst();
    return row === undefined ? undefined : { url: row.url, events: JSON.parse(row.events_json) as WebhookEvent[], createdAt: row.created_at };
  }

  /** Removes the webhook and its undelivered events; false when there was none. */
  async delete(tenantId: string): Promise<boolean> {
    const result = await this.#db.deleteFrom('webhooks').where('tenant_id', '=', tenantId).executeTakeFirst();
    await this.#db.deleteFrom('webhook_deliveries').where('tenant_id', '=', tenantId).where('status', '=', 'pending').execute();
    return Number(result.numDeletedRows) > 0;
  }

  async notify(tenantId: string, event: WebhookEvent, payload: Record<string, unknown>): Promise<void> {
    const hook = await this.get(tenantId);
    if (hook === undefined || !hook.events.includes(event)) return;
    const id = newId('whd');
    const createdAt = this.#now().toISOString();
    const body = JSON.stringify({ id, event, tenantId, createdAt, data: payload });
    await this.#db
      .insertInto('webhook_deliveries')
      .values({ id, tenant_id: tenantId, event, body, status: 'pending', attempts: 0, next_attempt_at: createdAt, last_error: null, created_at: createdAt, delivered_at: null })
      .execute();
    this.kick();
  }

  /** Recent deliveries of the tenant, newest first (what `GET /webhooks/deliveries` shows). */
  async deliveries(tenantId: string, limit = 50): Promise<Array<{ id: string; event: string; status: string; attempts: number; lastError: string | null; createdAt: string; deliveredAt: string | null; nextAttemptAt: string }>> {
    const rows = await this.#db.selectFrom('webhook_deliveries').selectAll().where('tenant_id', '=', tenantId).orderBy('created_at', 'desc').limit(limit).execute();
    return rows.map((row) => ({ id: row.id, event: row.event, status: row.status, attempts: row.attempts, lastError: row.last_error, createdAt: row.created_at, deliveredAt: row.delivered_at, nextAttemptAt: row.next_attempt_at }));
  }

  /** Sends what is due now; calls during a run make it go round once more. */
  kick(): void {
    if (this.#closed) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          await this.#deliverDue();
        } catch (error) {
          this.#onError(error, 'webhook delivery run');
        }
      } while (this.#again && !this.#closed);
    })().finally(() => {
      this.#running = undefined;
    });
  }

  /** Waits for the run in progress (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.idle();
  }

  async #deliverDue(): Promise<void> {
    const now = this.#now().toISOString();
    const due = await this.#db.selectFrom('webhook_deliveries').selectAll().where('status', '=', 'pending').where('next_attempt_at', '<=', now).orderBy('next_attempt_at').limit(100).execute();
    for (const delivery of due) {
      if (this.#closed) return;
      const attempts = delivery.attempts + 1;
      let failure: string | undefined;
      try {
        const hook = await this.#db.selectFrom('webhooks').selectAll().where('tenant_id', '=', delivery.tenant_id).executeTakeFirst();
        if (hook === undefined) throw new Error('the webhook was removed');
        const secret = await this.#cipher.open(delivery.tenant_id, secretPlace(delivery.tenant_id), hook.secret_text);
        const status = await this.#post(new URL(hook.url), secret, delivery.body);
        if (status < 200 || status >= 300) failure = `the receiver answered ${status}`;
      } catch (error) {
        failure = error instanceof Error ? error.message.slice(0, 300) : 'delivery failed';
      }
      const at = this.#now();
      if (failure === undefined) {
        await this.#db.updateTable('webhook_deliveries').set({ status: 'delivered', attempts, delivered_at: at.toISOString(), last_error: null }).where('id', '=', delivery.id).execute();
        continue;
      }
      const exhausted = attempts >= this.#maxAttempts;
      const delay = Math.min(3_600_000, this.#retryBaseMs * 2 ** (attempts - 1));
      await this.#db
        .updateTable('webhook_deliveries')
        .set({ status: exhausted ? 'failed' : 'pending', attempts, last_error: failure, next_attempt_at: new Date(at.getTime() + delay).toISOString() })
        .where('id', '=', delivery.id)
        .execute();
      if (!exhausted) this.#scheduleRetry(delay);
    }
  }

  #scheduleRetry(delay: number): void {
    const timer = setTimeout(() => this.kick(), delay);
    timer.unref();
  }

  /** The scheme, the allow-list and every address the host resolves to (as for model pulls). */
  async #checkDestination(url: URL): Promise<LookupFunction> {
    try {
      checkUrl(this.#policy, url);
      const host = normalizeHost(url.hostname);
      let addresses: { address: string; family: number }[];
      try {
        addresses = await lookup(host, { all: true, verbatim: true });
      } catch {
        throw new AiaasError('WEBHOOK_URL_REFUSED', `cannot resolve ${host}`, { details: { host } });
      }
      checkAddresses(this.#policy, url, addresses.map((entry) => entry.address));
      const chosen = addresses[0]!;
      return ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
        if (options.all === true) callback(null, [{ address: chosen.address, family: chosen.family }]);
        else callback(null, chosen.address, chosen.family);
      }) as unknown as LookupFunction;
    } catch (error) {
      throw refused(error);
    }
  }

  async #post(url: URL, secret: string, body: string): Promise<number> {
    const pinned = await this.#checkDestination(url);
    const timestamp = Math.floor(this.#now().getTime() / 1000);
    return new Promise((resolve, reject) => {
      const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
        url,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'aiaas-webhook', [signatureHeader]: signWebhook(secret, timestamp, body), 'content-length': Buffer.byteLength(body) },
          lookup: pinned,
          timeout: this.#timeoutMs,
          // A fresh connection per delivery: a pooled socket could have been opened to another address.
          agent: false,
        },
        (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
          response.on('error', reject);
        },
      );
      request.on('timeout', () => request.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      request.on('error', reject);
      request.end(body);
    });
  }
}
