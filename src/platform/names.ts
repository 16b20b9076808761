import { AiaasError, quoteForError } from '../errors.ts';

/*
 * Names appear in URL paths (`/v2/models/{name}`, TF-Serving's `{name}:predict`) and in the
 * `name@version` selector, so ':' '@' '/' and whitespace are excluded rather than escaped.
 */
const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Aliases take the same rule: they stand where a version does, in paths (`/versions/{alias}`,
 * TF-Serving's `/labels/{alias}:predict`) and after `@`, so `prod:predict` must not be one.
 */
export function validateName(kind: 'model' | 'dataset' | 'tenant' | 'key' | 'alias', name: unknown): string {
  if (typeof name !== 'string' || !namePattern.test(name)) {
    throw new AiaasError('INVALID_REQUEST', `Invalid ${kind} name ${quoteForError(name)}`, {
      details: { field: 'name', rule: '1-128 characters: letters, digits, ".", "_" or "-", starting with a letter or digit' },
    });
  }
  return name;
}
