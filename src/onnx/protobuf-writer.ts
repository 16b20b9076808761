/**
 * A minimal protobuf wire-format writer: just enough to serialise ONNX ModelProto.
 * Hand-written so the engine has no code-generation step and no runtime dependency.
 */
export class ProtobufWriter {
  private chunks: Uint8Array[] = [];
  private scratch = new Uint8Array(16);

  private pushVarint(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    let length = 0;
    while (v >= 0x80n) {
      this.scratch[length++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.scratch[length++] = Number(v);
    this.chunks.push(this.scratch.slice(0, length));
  }

  private tag(field: number, wireType: number): void {
    this.pushVarint(BigInt((field << 3) | wireType));
  }

  int64(field: number, value: number | bigint): this {
    this.tag(field, 0);
    this.pushVarint(BigInt(value));
    return this;
  }

  float32(field: number, value: number): this {
    this.tag(field, 5);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.chunks.push(bytes);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, 2);
    this.pushVarint(BigInt(value.byteLength));
    this.chunks.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (writer: ProtobufWriter) => void): this {
    const inner = new ProtobufWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  packedInt64(field: number, values: readonly (number | bigint)[]): this {
    const inner = new ProtobufWriter();
    for (const value of values) inner.pushVarint(BigInt(value));
    return this.bytes(field, inner.finish());
  }

  packedFloat32(field: number, values: readonly number[]): this {
    const bytes = new Uint8Array(values.length * 4);
    const view = new DataView(bytes.buffer);
    values.forEach((value, index) => view.setFloat32(index * 4, value, true));
    return this.bytes(field, bytes);
  }

  finish(): Uint8Array {
    let total = 0;
    for (const chunk of this.chunks) total += chunk.byteLength;
    const out = new Uint8Array(total);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return out;
  }
}
