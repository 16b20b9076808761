/**
 * Authentication and authorization for every route except the few public ones: the API key from
 * `Authorization: Bearer` or `x-api-key` resolves to a Principal on `request.principal`, each key
 * is rate limited, and route handlers call `authorize(request, permission)` for their permission.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { AiaasError } from '../errors.ts';
import { parseAuthorization, type RequestHeaders } from '../security/api-keys.ts';
import { RateLimiter, rateLimitedError } from '../security/rate-limit.ts';
import { modelAllowed, requirePermission, type Permission } from '../security/roles.ts';
import type { AccessService, Principal } from '../platform/access.ts';
import { isAcceptableCustomKey } from '../platform/access.ts';
import type { Repositories } from '../storage/index.ts';

export type { Principal } from '../platform/access.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth plugin on authenticated routes; undefined on public ones. */
    principal: Principal | undefined;
  }
  interface FastifyContextConfig {
    /** Served without an API key. */
    public?: boolean;
    /**
     * The permission(s) the route needs, checked before its body, query and params are validated:
     * a caller without them gets 403, never a 400 describing what the route accepts. The handler
     * still does its own (model-scoped) checks.
     */
    permission?: Permission | readonly Permission[];
    /** With `permission`: reserved to unrestricted admins of the operator tenant (authorizeOperator). */
    operator?: boolean;
  }
}

/** Routes defined in modules this plugin does not own, answered without a key. */
export const publicRouteUrls: ReadonlySet<string> = new Set(['/v2/health/live', '/v2/health/ready']);

export interface AuthOptions {
  access: AccessService;
  repositories: Repositories;
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  /** Milliseconds, for the token buckets and last-used throttling. */
  now: () => number;
  /** Minimum spacing of last_used_at writes per key, so every request does not write. */
  touchIntervalMs?: number;
}

/**
 * Custom bootstrap keys (any 32+ printable characters) are not `aiaas_…`-shaped, so when the
 * strict parser rejects a lone, plausible token it is still looked up; its hash decides.
 */
function presentedKey(headers: RequestHeaders): string | undefined {
  try {
    return parseAuthorization(headers);
  } catch (error) {
    const authorization = typeof headers.authorization === 'string' ? headers.authorization : undefined;
    const direct = typeof headers['x-api-key'] === 'string' ? headers['x-api-key'].trim() : undefined;
    const bearer = authorization === undefined ? undefined : /^\s*Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
    const token = authorization !== undefined && direct !== undefined ? undefined : (bearer ?? direct);
    if (token !== undefined && isAcceptableCustomKey(token)) return token;
    throw error;
  }
}

const plugin: FastifyPluginAsync<AuthOptions> = async (app: FastifyInstance, options: AuthOptions) => {
  const keyLimiter = new RateLimiter({ capacity: options.rateLimitBurst, refillPerSecond: options.rateLimitPerSecond, now: options.now });
  // Failed attempts are limited per client address, so guessing keys also costs the guesser.
  const failureLimiter = new RateLimiter({ capacity: options.rateLimitBurst, refillPerSecond: options.rateLimitPerSecond, now: options.now });
  const touchIntervalMs = options.touchIntervalMs ?? 60_000;
  const lastTouched = new Map<string, number>();

  app.decorateRequest('principal', undefined);

  /** A failed authentication: guessing keys costs the guesser, per client address. */
  const refused = (request: FastifyRequest, error: unknown): Error => {
    if (AiaasError.isInstance(error) && error.code === 'UNAUTHENTICATED') {
      const decision = failureLimiter.take(`ip:${request.ip}`);
      if (!decision.allowed) return rateLimitedError(decision.retryAfterSeconds);
    }
    return error as Error;
  };

  /** The key's rate limit and (throttled) last-use record; undefined when the request may go on. */
  const admit = (request: FastifyRequest, principal: Principal): Error | undefined => {
    // Set before the rate check, so a 429 is audited under the key that hit the limit.
    request.principal = principal;
    // This limiter holds API keys only: their ids are its keys, with nothing to tell apart.
    const decision = keyLimiter.take(principal.keyId);
    if (!decision.allowed) return rateLimitedError(decision.retryAfterSeconds);
    const now = options.now();
    const previous = lastTouched.get(principal.keyId);
    if (previous === undefined || now - previous >= touchIntervalMs) {
      lastTouched.set(principal.keyId, now);
      if (lastTouched.size > 100_000) lastTouched.clear();
      options.repositories.apiKeys
        .touchLastUsed(principal.tenantId, principal.keyId, new Date(now))
        .catch((error: unknown) => request.log.warn({ err: error }, 'could not record key last use'));
    }
    return undefined;
  };

  // A callback hook, not an async one: a key found in the access cache (the common case) is then
  // admitted in the same tick, with no promise and no database round trip.
  const authenticate = (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void): void => {
    let key: string;
    let cached: Principal | undefined;
    try {
      const presented = presentedKey(request.headers);
      if (presented === undefined) {
        throw new AiaasError('UNAUTHENTICATED', 'An API key is required: send "Authorization: Bearer <key>" or "x-api-key: <key>"', {
          headers: { 'www-authenticate': 'Bearer' },
        });
      }
      key = presented;
      cached = options.access.authenticateCached(key, request.raw.socket)?.principal;
    } catch (error) {
      done(refused(request, error));
      return;
    }
    if (cached !== undefined) {
      done(admit(request, cached));
      return;
    }
    options.access.authenticate(key).then(
      ({ principal }) => done(admit(request, principal)),
      (error: unknown) => done(refused(request, error)),
    );
  };

  // Fastify validates the body, query and params right after preValidation: the route's permission
  // is decided first, so only callers allowed to use a route learn what it accepts.
  const checkPermission = (permission: Permission | readonly Permission[], operator: boolean) => {
    const permissions = typeof permission === 'string' ? [permission as Permission] : (permission as readonly Permission[]);
    return (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void): void => {
      try {
        for (const each of permissions) {
          if (operator) authorizeOperator(request, each);
          else authorize(request, each);
        }
      } catch (error) {
        done(error as Error);
        return;
      }
      done();
    };
  };

  // Decided once per route, not on every request: which routes need a key and which a permission.
  // They go ahead of the route's own hooks; app- and plugin-wide hooks of the same kind still run
  // before them, so none of those may read `request.principal` (none does). Requests that match no
  // route get neither: the not-found handler answers 404 rather than demanding a key.
  app.addHook('onRoute', (route) => {
    const config = (route.config ?? {}) as { public?: boolean; permission?: Permission | readonly Permission[]; operator?: boolean };
    if (config.public === true || publicRouteUrls.has(route.url)) return;
    route.onRequest = [authenticate, ...routeHooks(route.onRequest)] as typeof route.onRequest;
    if (config.permission !== undefined) {
      route.preValidation = [checkPermission(config.permission, config.operator === true), ...routeHooks(route.preValidation)] as typeof route.preValidation;
    }
  });
};

/** A route's own hooks of one kind, as a list. */
export function routeHooks<Hook>(hooks: Hook | Hook[] | undefined): Hook[] {
  if (hooks === undefined) return [];
  return Array.isArray(hooks) ? hooks : [hooks];
}

// Hooks must apply to the whole app, not only inside this plugin's scope (what fastify-plugin does).
(plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
export const authPlugin = plugin;

/** The caller's principal, whatever its role; 401 without a key. */
export function requirePrincipal(request: FastifyRequest): Principal {
  const principal = request.principal;
  if (principal === undefined) throw new AiaasError('UNAUTHENTICATED', 'An API key is required');
  return principal;
}

/** The caller's principal if its role has `permission`; 401 without a key, 403 naming the permission. */
export function authorize(request: FastifyRequest, permission: Permission): Principal {
  const principal = requirePrincipal(request);
  requirePermission(principal.role, permission);
  return principal;
}

/**
 * Like authorize, and only for admins of the operator tenant (tenant management, the whole audit
 * chain) whose key reaches every model: a new tenant comes with an unrestricted admin key, so a key
 * restricted to some models creating one would escape its own scope.
 */
export function authorizeOperator(request: FastifyRequest, permission: Permission): Principal {
  const principal = authorize(request, permission);
  if (!principal.isOperator) {
    throw new AiaasError('FORBIDDEN', `"${permission}" across tenants is reserved to admins of the operator tenant`, {
      details: { permission, scope: 'operator' },
    });
  }
  if (principal.allowedModels !== null && !principal.allowedModels.includes('*')) {
    throw new AiaasError('FORBIDDEN', `"${permission}" across tenants needs a key that is not restricted to some models`, {
      details: { permission, scope: 'operator' },
    });
  }
  return principal;
}

/**
 * Enforces the key's model allow-list. A model outside it answers 404 MODEL_NOT_FOUND, exactly
 * like a missing model, so a restricted key cannot probe which model names exist.
 */
export function authorizeModel(request: FastifyRequest, modelName: string): Principal {
  const principal = requirePrincipal(request);
  if (!modelAllowed(principal.allowedModels, modelName)) {
    throw new AiaasError('MODEL_NOT_FOUND', `Model '${modelName}' not found`, { details: { model: modelName } });
  }
  return principal;
}
