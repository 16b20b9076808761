/**
 * Building blocks of the route schemas (TypeBox, i.e. JSON Schema): the error bodies, nullable
 * values, and the shape of a route's declaration. Fastify validates requests with these schemas,
 * `/openapi.json` publishes them, the SDK derives its wire types from them (type-only imports).
 */
import { Type, type TObject, type TSchema } from '@sinclair/typebox';

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** JSON the server passes through without a fixed shape (metrics, audit detail, model specs). */
export const AnyJson = (description: string) => Type.Unknown({ description });

export const Timestamp = Type.String({ description: 'ISO 8601 timestamp (UTC)' });

/** The platform's error body (docs/api.md "Errors"), every `/api/v1` and service route. */
export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable code from the error catalogue (src/errors.ts)' }),
      message: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { title: 'Error' },
);

/** V2 and TF-Serving errors, as those protocols define them; the code is in `x-aiaas-error-code`. */
export const ProtocolErrorBody = Type.Object({ error: Type.String() }, { title: 'ProtocolError' });

/** A response without a body (204, or V2's empty 200s). */
export const NoBody = Type.Null({ description: 'No body' });

/** A non-JSON response, in Fastify's per-content-type form. */
export function content(contentType: string, schema: TSchema): { content: Record<string, { schema: TSchema }> } {
  return { content: { [contentType]: { schema } } };
}

export type ResponseSchema = TSchema | ReturnType<typeof content>;

/**
 * One route's declaration. `params`, `querystring` and `body` are validated by Fastify; `response`
 * documents what the route sends per status (the integration tests check every recorded response
 * against it). `documentedBody` describes a body Fastify cannot validate as JSON (raw uploads, or an
 * optional body): it is published in `/openapi.json` only, and the handler checks it.
 */
export interface RouteSchema {
  params?: TObject;
  querystring?: TObject;
  body?: TSchema;
  documentedBody?: Record<string, TSchema>;
  response: Record<number, ResponseSchema>;
}

/** Binary upload bodies (the handler reads them raw). */
export const BinaryBody = Type.String({ description: 'Raw bytes', contentEncoding: 'binary' });
