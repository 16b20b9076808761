/**
 * Sliding windows over one sample's feature dimensions (the input's shape without the batch axis),
 * and how an input's shape reads as an image. Shared by occlusion, permutation importance and the
 * heatmap.
 */

/** How a sample's dimensions read as an image, when they do. */
export interface ImageLayout {
  height: number;
  width: number;
  channels: number;
  /** [C, H, W] (ONNX convention) rather than [H, W, C] (Keras, this engine). */
  channelsFirst: boolean;
}

const channelCounts = new Set([1, 3, 4]);

/**
 * [H, W], [H, W, C] or [C, H, W] with C of 1, 3 or 4, and a flat vector whose length is a square
 * (a flattened grayscale image such as MNIST's 784). Undefined for anything else.
 */
export function imageLayout(dims: readonly number[]): ImageLayout | undefined {
  if (dims.length === 1) {
    const side = Math.round(Math.sqrt(dims[0]!));
    return side >= 4 && side * side === dims[0] ? { height: side, width: side, channels: 1, channelsFirst: false } : undefined;
  }
  if (dims.length === 2) return { height: dims[0]!, width: dims[1]!, channels: 1, channelsFirst: false };
  if (dims.length === 3) {
    if (channelCounts.has(dims[2]!)) return { height: dims[0]!, width: dims[1]!, channels: dims[2]!, channelsFirst: false };
    if (channelCounts.has(dims[0]!)) return { height: dims[1]!, width: dims[2]!, channels: dims[0]!, channelsFirst: true };
  }
  return undefined;
}

/**
 * The window's extent per dimension. `size` is one number (applied to the spatial axes of an image,
 * which keeps every channel together, and to every axis otherwise) or one number per dimension.
 * Default: 1 per element for vectors and tables, about a seventh of the shorter side for images.
 */
export function windowShape(dims: readonly number[], size: number | readonly number[] | undefined): number[] {
  if (Array.isArray(size)) {
    if (size.length !== dims.length) throw new RangeError(`the window has ${size.length} dimensions; the input has ${dims.length} (${dims.join('×')})`);
    return size.map((extent, index) => Math.min(Math.max(1, extent), dims[index]!));
  }
  const layout = dims.length >= 2 ? imageLayout(dims) : undefined;
  const spatial = (size as number | undefined) ?? (layout === undefined ? 1 : Math.max(1, Math.round(Math.min(layout.height, layout.width) / 7)));
  if (layout === undefined || dims.length === 1) return dims.map((extent) => Math.min(Math.max(1, spatial), extent));
  if (dims.length === 2) return [Math.min(spatial, dims[0]!), Math.min(spatial, dims[1]!)];
  return layout.channelsFirst ? [dims[0]!, Math.min(spatial, dims[1]!), Math.min(spatial, dims[2]!)] : [Math.min(spatial, dims[0]!), Math.min(spatial, dims[1]!), dims[2]!];
}

/** Window origins along one axis: every `stride`, the last one flush with the end so every element is covered. */
function origins(extent: number, window: number, stride: number): number[] {
  const result: number[] = [];
  for (let start = 0; start + window < extent; start += stride) result.push(start);
  result.push(extent - window);
  return [...new Set(result)];
}

/** Every window position, as the list of flat element indices it covers (row-major). */
export function windowPositions(dims: readonly number[], window: readonly number[], stride: readonly number[]): number[][] {
  const perAxis = dims.map((extent, axis) => origins(extent, window[axis]!, stride[axis]!));
  const strides = dims.map((_, axis) => dims.slice(axis + 1).reduce((product, extent) => product * extent, 1));
  const positions: number[][] = [];
  const start = new Array<number>(dims.length).fill(0);
  const walk = (axis: number): void => {
    if (axis === dims.length) {
      const indices: number[] = [];
      const cover = (inner: number, base: number): void => {
        if (inner === dims.length) {
          indices.push(base);
          return;
        }
        for (let step = 0; step < window[inner]!; step++) {
          cover(inner + 1, base + (start[inner]! + step) * strides[inner]!);
        }
      };
      cover(0, 0);
      positions.push(indices);
      return;
    }
    for (const origin of perAxis[axis]!) {
      start[axis] = origin;
      walk(axis + 1);
    }
  };
  walk(0);
  return positions;
}
