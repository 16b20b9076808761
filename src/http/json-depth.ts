/**
 * A nesting limit for the platform's JSON request bodies (`/api/v1`), checked on the text before
 * parsing. (The inference routes bound tensor rank instead: their bodies are large and every walk of
 * them is bounded by the rank limit.) JSON.parse itself
 * copes with any depth, but everything after it that walks the value (tensor parsers, spec
 * validation, the audit chain's canonical JSON, JSON.stringify) recurses, and 200k levels of `[`
 * overflow the stack there. Refusing the body up front keeps every later walk shallow.
 */
import type { FastifyInstance } from 'fastify';
import { describeJsonSyntaxError } from '../data/json-syntax.ts';
import { AiaasError } from '../errors.ts';

/** Deepest object/array nesting a request body may have (tensors need rank + a few levels). */
export const maxJsonDepth = 100;

const openBrace = 0x7b;
const closeBrace = 0x7d;
const openBracket = 0x5b;
const closeBracket = 0x5d;
const quote = 0x22;
const backslash = 0x5c;

/** Throws NESTING_TOO_DEEP when `text` nests objects/arrays deeper than `limit` (strings skipped). */
export function assertJsonDepth(text: string, limit = maxJsonDepth): void {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === backslash) index++;
      else if (code === quote) inString = false;
    } else if (code === quote) inString = true;
    else if (code === openBracket || code === openBrace) {
      if (++depth > limit) {
        throw new AiaasError('NESTING_TOO_DEEP', `The JSON body nests deeper than ${limit} levels`, { details: { limit } });
      }
    } else if (code === closeBracket || code === closeBrace) depth--;
  }
}

/** Replaces the root JSON parser with Fastify's own (prototype-poisoning checks kept) behind the depth check. */
export function installJsonBodyParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser(['application/json']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    try {
      assertJsonDepth(body as string);
    } catch (error) {
      done(error as Error);
      return;
    }
    parseJson(request, body as string, (error, value) => {
      // Fastify's parser says only "not valid JSON"; a client fixing a hand-written body needs the place.
      if (error !== null && (error as { code?: string }).code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
        done(new AiaasError('INVALID_JSON', `The request body is not valid JSON: ${describeJsonSyntaxError(body as string, error)}`));
        return;
      }
      done(error, value);
    });
  });
}
