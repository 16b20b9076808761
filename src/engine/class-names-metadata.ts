import { AiaasError, type ErrorCode } from '../errors.ts';

/** Most class names a model file may declare, and the longest name (bounds what a file can make a server store). */
export const maxModelClassNames = 10_000;
export const maxClassNameLength = 256;

/**
 * The `aiaas.class_names` metadata value (a JSON array of strings) as names; undefined when absent.
 * A value that is present but malformed is an error with `code`, naming `file`.
 */
export function parseClassNamesMetadata(text: string | undefined, file: string, code: ErrorCode): string[] | undefined {
  if (text === undefined) return undefined;
  const refuse = (problem: string): AiaasError => new AiaasError(code, `${file}: metadata aiaas.class_names ${problem}`, { details: { file } });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw refuse('is not JSON; expected an array of class-name strings');
  }
  if (!Array.isArray(value) || value.length === 0 || !value.every((name) => typeof name === 'string')) throw refuse('must be a non-empty JSON array of strings');
  if (value.length > maxModelClassNames) throw refuse(`has ${value.length} names; at most ${maxModelClassNames} are allowed`);
  const long = (value as string[]).find((name) => name.length > maxClassNameLength);
  if (long !== undefined) throw refuse(`has a name of ${long.length} characters; at most ${maxClassNameLength} are allowed`);
  return value as string[];
}
