/** Unauthenticated service routes: health, readiness, metrics, the OpenAPI document and its page. */
import { Type } from '@sinclair/typebox';
import { content, type RouteSchema } from './common.ts';

export const HealthStatus = Type.Object({ status: Type.Literal('ok') });
export const ReadinessStatus = Type.Object({ status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]) });

export const serviceSchemas = {
  health: { response: { 200: HealthStatus } },
  ready: { response: { 200: ReadinessStatus, 503: ReadinessStatus } },
  metrics: { response: { 200: content('text/plain', Type.String({ description: 'Prometheus text exposition format' })) } },
  openApi: {
    response: {
      200: Type.Object(
        { openapi: Type.String(), info: Type.Object({}, { additionalProperties: true }), paths: Type.Object({}, { additionalProperties: true }) },
        { additionalProperties: true, description: 'An OpenAPI 3.1 document' },
      ),
    },
  },
  docs: { response: { 200: content('text/html', Type.String({ description: 'A page listing every operation' })) } },
} satisfies Record<string, RouteSchema>;
