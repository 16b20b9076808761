import { AiaasError, type ErrorCode } from '../errors.ts';

/**
 * The metadata key (model.onnx metadata_props, model.safetensors __metadata__) holding a JSON array
 * of class names by output index. Servers read it from any uploaded model.onnx.
 */
export const classNamesMetadataKey = 'aiaas.class_names';
/** The metadata key holding a JSON array of the training data's feature names (CSV columns), by flat input index. */
export const featureNamesMetadataKey = 'aiaas.feature_names';

/** Most names a model file may declare, and the longest name (bounds what a file can make a server store). */
export const maxModelNames = 100_000;
export const maxNameLength = 256;

/**
 * A names metadata value (`aiaas.class_names`, `aiaas.feature_names`: a JSON array of strings);
 * undefined when absent. A value that is present but malformed is an error with `code`, naming `file`.
 */
export function parseNamesMetadata(text: string | undefined, key: string, file: string, code: ErrorCode): string[] | undefined {
  if (text === undefined) return undefined;
  const refuse = (problem: string): AiaasError => new AiaasError(code, `${file}: metadata ${key} ${problem}`, { details: { file, key } });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw refuse('is not JSON; expected an array of strings');
  }
  if (!Array.isArray(value) || value.length === 0 || !value.every((name) => typeof name === 'string')) throw refuse('must be a non-empty JSON array of strings');
  if (value.length > maxModelNames) throw refuse(`has ${value.length} names; at most ${maxModelNames} are allowed`);
  const long = (value as string[]).find((name) => name.length > maxNameLength);
  if (long !== undefined) throw refuse(`has a name of ${long.length} characters; at most ${maxNameLength} are allowed`);
  return value as string[];
}
