/**
 * A model's `metadata_props` (ModelProto field 14, StringStringEntryProto {key = 1, value = 2}),
 * read from the top level of the file or of its skeleton: the graph is one length-delimited
 * field and is skipped whole, so this costs nothing next to validating the model.
 */
import { ProtobufDecodeError, ProtobufReader } from './protobuf-reader.ts';
import { InvalidOnnxError } from './external-data.ts';

const metadataPropsField = 14;

export function readOnnxMetadata(model: Uint8Array): Map<string, string> {
  const metadata = new Map<string, string>();
  try {
    const reader = new ProtobufReader(model);
    while (reader.next()) {
      if (reader.field !== metadataPropsField) continue;
      const entry = reader.message('metadata_props');
      let key = '';
      let value = '';
      while (entry.next()) {
        if (entry.field === 1) key = entry.text('metadata_props key');
        else if (entry.field === 2) value = entry.text('metadata_props value');
      }
      metadata.set(key, value);
    }
  } catch (error) {
    if (error instanceof ProtobufDecodeError) throw new InvalidOnnxError(error.message);
    throw error;
  }
  return metadata;
}
