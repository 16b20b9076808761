/**
 * How Fastify uses the route schemas: requests are checked with TypeBox's compiled checkers (no
 * type coercion, no silent removal of unknown fields, unlike Fastify's default Ajv settings), a
 * failure becomes an AiaasError of the platform's error contract, and response schemas are
 * documentation only: replies are serialized with JSON.stringify exactly as before.
 */
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { Type, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { AiaasError, type ErrorCode } from '../../errors.ts';

/** A schema annotation: validation failures inside this subschema carry this code (default INVALID_REQUEST). */
export const errorCodeKeyword = 'x-aiaas-error-code';

/** Echoed names are cut short: a request must not get a megabyte of its own input back. */
const maximumEchoLength = 64;

function echo(text: string): string {
  return text.length <= maximumEchoLength ? text : `${text.slice(0, maximumEchoLength)}…`;
}

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** The innermost annotated code along `path` (JSON pointer) through properties and items. */
function errorCodeAt(schema: TSchema, path: string): ErrorCode {
  let code: ErrorCode = 'INVALID_REQUEST';
  let current: TSchema | undefined = schema;
  for (const segment of path.split('/').slice(1)) {
    if (current === undefined) break;
    const annotated = (current as Record<string, unknown>)[errorCodeKeyword];
    if (typeof annotated === 'string') code = annotated as ErrorCode;
    const properties = current.properties as Record<string, TSchema> | undefined;
    current = properties?.[unescapePointer(segment)] ?? (current.items as TSchema | undefined);
  }
  const last = current === undefined ? undefined : (current as Record<string, unknown>)[errorCodeKeyword];
  return typeof last === 'string' ? (last as ErrorCode) : code;
}

const partNames: Record<string, { noun: string; detail: 'field' | 'parameter' }> = {
  body: { noun: 'field', detail: 'field' },
  querystring: { noun: 'query parameter', detail: 'parameter' },
  params: { noun: 'path parameter', detail: 'parameter' },
  headers: { noun: 'header', detail: 'parameter' },
};

const typeNames: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
  null: 'null',
};

/** What a schema expects, in words: "a string or null", "one of csv, idx", "a non-empty array". */
function expectation(schema: TSchema): string {
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  const members = schema.anyOf as TSchema[] | undefined;
  if (members !== undefined) {
    if (members.every((member) => member.const !== undefined)) return `one of ${members.map((member) => String(member.const)).join(', ')}`;
    return members.map(expectation).join(' or ');
  }
  if (schema.type === 'array' && typeof schema.minItems === 'number' && schema.minItems > 0) {
    return schema.minItems === 1 ? 'a non-empty array' : `an array of at least ${schema.minItems} items`;
  }
  if (schema.type === 'string' && typeof schema.pattern === 'string') return `a string matching ${schema.pattern}`;
  const name = typeof schema.type === 'string' ? typeNames[schema.type] : undefined;
  if (name === undefined) return 'a valid value';
  const bounds = [
    typeof schema.minimum === 'number' ? `≥ ${schema.minimum}` : undefined,
    typeof schema.exclusiveMinimum === 'number' ? `> ${schema.exclusiveMinimum}` : undefined,
    typeof schema.maximum === 'number' ? `≤ ${schema.maximum}` : undefined,
    typeof schema.exclusiveMaximum === 'number' ? `< ${schema.exclusiveMaximum}` : undefined,
  ].filter((bound) => bound !== undefined);
  return bounds.length === 0 ? name : `${name} ${bounds.join(' and ')}`;
}

/** A short rendering of what was sent: scalars only, cut short. */
function received(value: unknown): string {
  if (value === undefined) return '';
  if (value === null || ['number', 'boolean'].includes(typeof value)) return `; got ${String(value)}`;
  if (typeof value === 'string') return `; got ${echo(JSON.stringify(value))}`;
  return `; got ${Array.isArray(value) ? 'an array' : 'an object'}`;
}

/**
 * A union (e.g. "settings or null") fails as a whole; when one member got further into the value
 * (its first failure is deeper), that failure says more ("Unknown field 'batching.size'").
 */
function innermost(error: ValueError): ValueError {
  if (error.type !== ValueErrorType.Union) return error;
  const deeper = error.errors.map((member) => member.First()).find((first) => first !== undefined && first.path.length > error.path.length);
  return deeper === undefined ? error : innermost(deeper);
}

/** The first failure of a request part against its schema, in the platform's words and codes. */
export function validationError(schema: TSchema, failure: ValueError, part: string): AiaasError {
  const error = innermost(failure);
  const { noun, detail } = partNames[part] ?? { noun: 'field', detail: 'field' as const };
  const path = echo(error.path.split('/').slice(1).map(unescapePointer).join('.'));
  const code = errorCodeAt(schema, error.path);
  const details = path === '' ? { where: part } : { where: part, [detail]: path };
  if (error.type === ValueErrorType.ObjectAdditionalProperties) {
    const parent = schemaAt(schema, error.path.slice(0, error.path.lastIndexOf('/')));
    const allowed = Object.keys((parent?.properties as Record<string, unknown> | undefined) ?? {});
    return new AiaasError(code, `Unknown ${noun} '${path}'`, { details: { ...details, allowed } });
  }
  // Whatever the keyword, name the place and what belongs there.
  const expected = schemaAt(schema, error.path) ?? error.schema;
  const subject = path === '' ? (part === 'body' ? 'The request body' : `The ${part}`) : `'${path}'`;
  const value = error.type === ValueErrorType.ObjectRequiredProperty ? undefined : error.value;
  return new AiaasError(code, `${subject} must be ${expectation(expected)}${received(value)}`, { details });
}

/** The subschema at a JSON pointer, through properties and items (undefined when unions intervene). */
function schemaAt(schema: TSchema, path: string): TSchema | undefined {
  let current: TSchema | undefined = schema;
  for (const segment of path.split('/').slice(1)) {
    if (current === undefined) return undefined;
    const properties = current.properties as Record<string, TSchema> | undefined;
    current = properties?.[unescapePointer(segment)] ?? (current.items as TSchema | undefined);
  }
  return current;
}

const checks = new WeakMap<TSchema, TypeCheck<TSchema>>();

function checkerFor(schema: TSchema): TypeCheck<TSchema> {
  let check = checks.get(schema);
  if (check === undefined) {
    check = TypeCompiler.Compile(schema);
    checks.set(schema, check);
  }
  return check;
}

/**
 * Installs the validator and serializer compilers on `app` (and the plugins registered under it).
 * The protocol plugins call this themselves so they behave the same in any Fastify instance.
 */
export function installSchemaCompilers(app: FastifyInstance): void {
  app.setValidatorCompiler<TSchema>(({ schema, httpPart }) => compileValidator(schema, httpPart));
  app.setSerializerCompiler(() => (data: unknown) => JSON.stringify(data));
}

/**
 * docs/api.md promises that /api/v1 refuses query parameters it does not know (a typo such as
 * `?limt=5` must fail loudly, not list everything): a route that declares no query string gets the
 * empty one, so any parameter at all is a 400 naming it.
 */
export function refuseUnknownQueryParameters(route: { schema?: unknown }): void {
  const schema = (route.schema ?? {}) as { querystring?: TSchema };
  if (schema.querystring === undefined) route.schema = { ...schema, querystring: noQueryParameters };
  // TypeBox objects allow unknown properties unless told otherwise; a declared query string is closed too.
  else if (schema.querystring.additionalProperties !== false) route.schema = { ...schema, querystring: { ...schema.querystring, additionalProperties: false } };
}

const noQueryParameters = Type.Object({}, { additionalProperties: false });

export type RequestValidator = (value: unknown) => true | { error: AiaasError };

/** The validator Fastify runs for one request part; exported for routes that wrap it. */
export function compileValidator(schema: TSchema, httpPart: string | undefined): RequestValidator {
  const check = checkerFor(schema);
  const part = httpPart ?? 'body';
  return (value: unknown) => {
    if (check.Check(value)) return true;
    const first = check.Errors(value).First();
    return { error: first === undefined ? new AiaasError('INVALID_REQUEST', `Invalid ${part}`, { details: { where: part } }) : validationError(schema, first, part) };
  };
}
