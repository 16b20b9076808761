/** Dataset upload, list, get and delete. */
import { Type } from '@sinclair/typebox';
import { datasetFormats } from '../../data/load.ts';
import { BinaryBody, NoBody, Timestamp, type RouteSchema } from './common.ts';

export const DatasetFormatSchema = Type.Union(datasetFormats.map((format) => Type.Literal(format)));

export const DatasetSchemaInfo = Type.Object({
  featureShape: Type.Array(Type.Integer()),
  labelShape: Type.Array(Type.Integer()),
  featureNames: Type.Optional(Type.Array(Type.String())),
  labelName: Type.Optional(Type.String()),
  classes: Type.Optional(Type.Integer()),
  classNames: Type.Optional(Type.Array(Type.String(), { description: 'String labels as class names, sorted; a label\'s class index is its position here' })),
  label: Type.Optional(Type.String({ description: 'The label column or key the upload was parsed with' })),
});

export const Dataset = Type.Object({
  id: Type.String(),
  name: Type.String(),
  format: DatasetFormatSchema,
  rowCount: Type.Integer(),
  bytes: Type.Integer(),
  schema: DatasetSchemaInfo,
  createdAt: Timestamp,
});

/** Query values are strings: the handler parses numbers and formats, with its own messages. */
const Digits = (description: string) => Type.String({ pattern: '^[0-9]{1,15}$', description });

export const UploadDatasetQuery = Type.Object(
  {
    name: Type.Optional(Type.String({ description: 'Required for a raw body; multipart may send it as a part or use the file name' })),
    format: Type.Optional(Type.String({ description: `One of ${datasetFormats.join(', ')}; detected when absent` })),
    label: Type.Optional(Type.String({ description: 'Label column (CSV) or key (JSON lines)' })),
  },
  { additionalProperties: false },
);

const multipartUpload = Type.Object({
  file: BinaryBody,
  labels: Type.Optional(BinaryBody),
  name: Type.Optional(Type.String()),
  format: Type.Optional(Type.String()),
  label: Type.Optional(Type.String()),
});

export const datasetSchemas = {
  upload: {
    querystring: UploadDatasetQuery,
    documentedBody: { 'application/octet-stream': BinaryBody, 'multipart/form-data': multipartUpload },
    response: { 201: Type.Object({ dataset: Dataset }) },
  },
  list: {
    querystring: Type.Object({ limit: Type.Optional(Digits('Page size (default 100)')), offset: Type.Optional(Digits('Rows to skip')) }, { additionalProperties: false }),
    response: { 200: Type.Object({ datasets: Type.Array(Dataset) }) },
  },
  get: { params: Type.Object({ id: Type.String() }), response: { 200: Dataset } },
  delete: { params: Type.Object({ id: Type.String() }), response: { 204: NoBody } },
} satisfies Record<string, RouteSchema>;
