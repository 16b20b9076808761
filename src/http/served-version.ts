/**
 * `x-aiaas-model-version`: every inference answer names the version that answered (a canary split
 * picks one per request). Set on the raw response as soon as the version is known, so it reaches
 * every kind of answer: JSON, errors after resolving, and the hijacked streams of the LLM routes.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const modelVersionHeader = 'x-aiaas-model-version';

const responses = new WeakMap<FastifyRequest, ServerResponse>();

/** Called from an `onRequest` hook: remembers where the request's answer goes. */
export function trackResponse(request: FastifyRequest, reply: FastifyReply): void {
  responses.set(request, reply.raw);
}

export function nameServedVersion(request: FastifyRequest, version: string): void {
  const response = responses.get(request);
  if (response !== undefined) nameServedVersionOn(response, version);
}

/** Where the caller holds the response already (the tensor protocols' replies). */
export function nameServedVersionOn(response: ServerResponse, version: string): void {
  if (!response.headersSent) response.setHeader(modelVersionHeader, version);
}
