/**
 * How Fastify uses the route schemas: requests are checked with TypeBox's compiled checkers (no
 * type coercion, no silent removal of unknown fields, unlike Fastify's default Ajv settings), a
 * failure becomes an AiaasError of the platform's error contract, and response schemas are
 * documentation only: replies are serialized with JSON.stringify exactly as before.
 */
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import type { TSchema } from '@sinclair/typebox';
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

/** The first failure of `value` against `schema`, in the platform's words. */
export function validationError(schema: TSchema, error: ValueError, part: string): AiaasError {
  const { noun, detail } = partNames[part] ?? { noun: 'field', detail: 'field' as const };
  const path = error.path === '' ? '' : echo(error.path.slice(1).split('/').map(unescapePointer).join('.'));
  const code = errorCodeAt(schema, error.path);
  const where = { where: part };
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties:
      return new AiaasError(code, `Unknown ${noun} '${path}'`, { details: { ...where, [detail]: path } });
    case ValueErrorType.ObjectRequiredProperty:
      return new AiaasError(code, `'${path}' is required`, { details: { ...where, [detail]: path } });
    default:
      if (path === '') return new AiaasError(code, `The ${part === 'body' ? 'request body' : part}: ${error.message}`, { details: where });
      return new AiaasError(code, `'${path}': ${error.message}`, { details: { ...where, [detail]: path } });
  }
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
  app.setValidatorCompiler<TSchema>(({ schema, httpPart }) => {
    const check = checkerFor(schema);
    const part = httpPart ?? 'body';
    return (value: unknown) => {
      if (check.Check(value)) return true;
      const first = check.Errors(value).First();
      return { error: first === undefined ? new AiaasError('INVALID_REQUEST', `Invalid ${part}`, { details: { where: part } }) : validationError(schema, first, part) };
    };
  });
  app.setSerializerCompiler(() => (data: unknown) => JSON.stringify(data));
}
