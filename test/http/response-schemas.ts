/**
 * Checks recorded responses against the schema their route declares (src/http/schemas), strictly:
 * every object schema without an explicit `additionalProperties` is closed, so a field the server
 * sends but the schema does not name (or the reverse) fails the test that recorded it.
 */
import { Kind, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { RegisteredRoute } from '../../src/http/openapi.ts';
import { ErrorBody, ProtocolErrorBody, type ResponseSchema } from '../../src/http/schemas/common.ts';
import { OpenAiErrorBody } from '../../src/http/schemas/llm.ts';

/** A deep copy (TypeBox's symbol-keyed kinds included) with every open object schema closed. */
export function strict(schema: TSchema): TSchema {
  const copy = Object.assign({}, schema) as unknown as Record<string | symbol, unknown>;
  if (copy[Kind] === 'Object' && copy.additionalProperties === undefined) copy.additionalProperties = false;
  for (const key of ['items', 'not'] as const) if (typeof copy[key] === 'object' && copy[key] !== null) copy[key] = strict(copy[key] as TSchema);
  for (const key of ['anyOf', 'allOf', 'oneOf'] as const) if (Array.isArray(copy[key])) copy[key] = (copy[key] as TSchema[]).map(strict);
  for (const key of ['properties', 'patternProperties'] as const) {
    if (typeof copy[key] === 'object' && copy[key] !== null) {
      copy[key] = Object.fromEntries(Object.entries(copy[key] as Record<string, TSchema>).map(([name, inner]) => [name, strict(inner)]));
    }
  }
  if (typeof copy.additionalProperties === 'object' && copy.additionalProperties !== null) copy.additionalProperties = strict(copy.additionalProperties as TSchema);
  return copy as unknown as TSchema;
}

const checks = new WeakMap<TSchema, TypeCheck<TSchema>>();
function strictCheck(schema: TSchema): TypeCheck<TSchema> {
  let check = checks.get(schema);
  if (check === undefined) {
    check = TypeCompiler.Compile(strict(schema));
    checks.set(schema, check);
  }
  return check;
}

function patternOf(url: string): RegExp {
  const escaped = url.split('/').map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${escaped.join('/')}$`);
}

/** The registered route serving `method url`: the match with the most literal segments wins, as in the router. */
export function findRoute(routes: readonly RegisteredRoute[], method: string, url: string): RegisteredRoute | undefined {
  const path = url.split('?')[0]!;
  const literalSegments = (route: RegisteredRoute) => route.url.split('/').filter((segment) => !segment.startsWith(':')).length;
  return routes
    .filter((route) => route.method === method.toUpperCase() && patternOf(route.url).test(path))
    .sort((left, right) => literalSegments(right) - literalSegments(left))[0];
}

export interface RecordedResponse {
  status: number;
  contentType: string | undefined;
  body: string;
}

function isProtocolRoute(url: string): boolean {
  const ollama = url.startsWith('/api/') && !url.startsWith('/api/v1/');
  return url === '/v2' || url.startsWith('/v2/') || url.startsWith('/tfserving/') || ollama;
}

function declaredFor(route: RegisteredRoute, status: number): ResponseSchema | undefined {
  const declared = route.schema?.response?.[status];
  if (declared !== undefined) return declared;
  // Errors share one schema per protocol (the `default` response of /openapi.json).
  if (status >= 400) return route.url.startsWith('/v1/') ? OpenAiErrorBody : isProtocolRoute(route.url) ? ProtocolErrorBody : ErrorBody;
  return undefined;
}

/** TF-Serving writes NaN and infinities as bare tokens (api_rest.md); they stand where numbers do. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return JSON.parse(text.replace(/(?<=[[,:]\s*)(?:NaN|-?Infinity)(?=\s*[,\]}])/g, '0'));
  }
}

/** What is wrong with `response` for `method url`, or undefined when it matches its schema. */
export function responseSchemaProblem(routes: readonly RegisteredRoute[], method: string, url: string, response: RecordedResponse): string | undefined {
  const where = `${method} ${url} → ${response.status}`;
  const route = findRoute(routes, method, url);
  if (route === undefined) return response.status === 404 ? undefined : `${where}: no registered route`;
  const declared = declaredFor(route, response.status);
  if (declared === undefined) return `${where}: status not declared by ${route.method} ${route.url}`;
  const mediaType = (response.contentType ?? '').split(';')[0]!.trim();
  let schema: TSchema;
  if ('content' in declared && !(Kind in declared)) {
    const contentSchemas = (declared as { content: Record<string, { schema: TSchema }> }).content;
    const entry = contentSchemas[mediaType];
    if (entry === undefined) return `${where}: content type ${mediaType} not declared (${Object.keys(contentSchemas).join(', ')})`;
    if (mediaType !== 'application/json') return undefined;
    schema = entry.schema;
  } else {
    schema = declared as TSchema;
  }
  if (schema.type === 'null') return response.body === '' ? undefined : `${where}: declared without a body, got ${response.body.slice(0, 200)}`;
  if (mediaType !== 'application/json') return `${where}: expected JSON, got ${mediaType || 'no content type'}`;
  let value: unknown;
  try {
    value = parseJson(response.body);
  } catch {
    return `${where}: body is not JSON: ${response.body.slice(0, 200)}`;
  }
  const check = strictCheck(schema);
  if (check.Check(value)) return undefined;
  const errors = [...check.Errors(value)].slice(0, 3).map((error) => `${error.path || '/'}: ${error.message}`);
  return `${where}: does not match its schema: ${errors.join('; ')}`;
}

/** Throws when the response does not match its route's declared schema. */
export function expectMatchesSchema(routes: readonly RegisteredRoute[], method: string, url: string, response: RecordedResponse): void {
  const problem = responseSchemaProblem(routes, method, url, response);
  if (problem !== undefined) throw new Error(problem);
}
