/**
 * What an uploaded ONNX model may read besides itself. ONNX Runtime follows a tensor's
 * `external_data.location` to any file it can open, so:
 * - a bare `.onnx` upload may not use external data at all;
 * - in a saved-model `.tar`, a location must be a plain relative path naming another file of the
 *   same archive (relative to `model.onnx`'s folder there). Those files are stored with the version
 *   and written beside `model.onnx` in its private directory when it loads, so the reference
 *   resolves to them and to nothing else.
 */
import { AiaasError } from '../errors.ts';
import { findExternalDataInSlices, InvalidOnnxError, quoteName, type ExternalDataReference } from '../onnx/external-data.ts';
import { onnxSkeleton } from '../onnx/skeleton.ts';
import { isSafeRelativePath } from '../storage/plaintext-directory.ts';

/** Keys of `external_data` ONNX defines; anything else is refused rather than guessed at. */
const knownKeys = new Set(['location', 'offset', 'length', 'checksum']);
const decimal = /^[0-9]{1,15}$/;

function invalid(message: string, details: Record<string, unknown> = {}): AiaasError {
  return new AiaasError('INVALID_MODEL_FILE', message, { details });
}

async function references(onnx: Uint8Array): Promise<ExternalDataReference[]> {
  try {
    // In slices: a hostile file of millions of tiny fields must not hold up other requests.
    return await findExternalDataInSlices(onnx);
  } catch (error) {
    if (error instanceof InvalidOnnxError) throw invalid(`the uploaded file is not a loadable ONNX model: ${error.message}`);
    throw error;
  }
}

/** The one location a reference names, checked to be a file of the archive; its offset and length within it. */
function checkReference(reference: ExternalDataReference, files: ReadonlyMap<string, { byteLength: number }>, reserved: readonly string[]): string {
  const { tensor } = reference;
  const unknown = [...reference.entries.keys()].filter((key) => !knownKeys.has(key));
  if (unknown.length > 0) {
    throw invalid(`${tensor} has external_data key ${quoteName(unknown[0]!)}; only location, offset, length and checksum are understood`, { tensor });
  }
  if (reference.locations.length !== 1) {
    throw invalid(`${tensor} has ${reference.locations.length === 0 ? 'no' : 'more than one'} external_data location`, { tensor });
  }
  const location = reference.locations[0]!;
  if (!isSafeRelativePath(location)) {
    throw invalid(
      `${tensor} keeps its data at ${quoteName(location)}, which is not a file of this archive: a location must be a relative path ` +
        "beside model.onnx (letters, digits, '.', '_', '+', '-' and '/' between folders; no '..', no leading '/' or '.', no backslashes)",
      { tensor },
    );
  }
  if (reserved.includes(location)) {
    throw invalid(`${tensor} keeps its data in ${quoteName(location)}, a saved-model file, not a data file`, { tensor });
  }
  const file = files.get(location);
  if (file === undefined) {
    throw invalid(`${tensor} keeps its data in ${quoteName(location)}, which the archive does not hold beside model.onnx`, { tensor, location });
  }
  const offsetText = reference.entries.get('offset') ?? '0';
  const lengthText = reference.entries.get('length');
  if (!decimal.test(offsetText) || (lengthText !== undefined && !decimal.test(lengthText))) {
    throw invalid(`${tensor} has an external_data offset or length that is not a decimal byte count`, { tensor });
  }
  const offset = Number(offsetText);
  const end = lengthText === undefined ? file.byteLength : offset + Number(lengthText);
  if (offset > file.byteLength || end > file.byteLength) {
    throw invalid(`${tensor} reads bytes ${offset} to ${end} of ${quoteName(location)}, which holds ${file.byteLength}`, { tensor, location });
  }
  return location;
}

/**
 * Checks every external-data reference of `onnx` and returns the files they name (location → bytes).
 * `archiveFiles` are the other files of a saved-model archive, keyed by their path relative to
 * model.onnx's folder; undefined for a bare .onnx upload, which may not reference any. `reserved`
 * names files that are part of the saved model itself and never data.
 */
export async function externalDataFiles<File extends { byteLength: number } = Uint8Array>(
  onnx: Uint8Array,
  archiveFiles: ReadonlyMap<string, File> | undefined,
  reserved: readonly string[],
): Promise<Map<string, File>> {
  const found = await references(onnx);
  const used = new Map<string, File>();
  if (found.length === 0) return used;
  if (archiveFiles === undefined) {
    const first = found[0]!;
    const where = first.locations[0] === undefined ? 'an external file' : `an external file (${quoteName(first.locations[0])})`;
    throw invalid(
      `${first.tensor} keeps its data in ${where}; a bare .onnx upload must hold all of its tensors. ` +
        'Upload a saved-model .tar holding model.onnx and its data files instead',
      { tensor: first.tensor, tensorsWithExternalData: found.length },
    );
  }
  for (const reference of found) {
    const location = checkReference(reference, archiveFiles, reserved);
    used.set(location, archiveFiles.get(location)!);
  }
  // The files are written out as named: 'a' and 'a/b' cannot both exist.
  for (const location of used.keys()) {
    const parts = location.split('/');
    for (let length = 1; length < parts.length; length++) {
      const folder = parts.slice(0, length).join('/');
      if (used.has(folder)) throw invalid(`the external data names ${quoteName(folder)} both as a file and as a folder`, { location: folder });
    }
  }
  return used;
}

/**
 * The bare-.onnx check of `externalDataFiles` for a model that arrives as a stream (a streamed
 * upload, decrypted from storage): walks the model's skeleton (`onnxSkeleton`: everything but the
 * main graph's initializer data), so memory stays bounded whatever the file's size. Returns the skeleton
 * (its metadata is read from it).
 */
export async function refuseExternalData(onnx: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const skeleton = await skeletonOf(onnx);
  await externalDataFiles(skeleton, undefined, []);
  return skeleton;
}

/** The model's structure without its initializers' data (`onnxSkeleton`), or INVALID_MODEL_FILE. */
export async function skeletonOf(onnx: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  try {
    return await onnxSkeleton(onnx);
  } catch (error) {
    if (error instanceof InvalidOnnxError) throw invalid(`the uploaded file is not a loadable ONNX model: ${error.message}`);
    throw error;
  }
}
