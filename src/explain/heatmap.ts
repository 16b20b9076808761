/**
 * An attribution heatmap over its input image: the image in grayscale underneath, positive
 * attribution in red and negative in blue on top, opacity growing with |attribution| relative to
 * the largest. Scaled up by whole pixels so a 28 × 28 digit is readable.
 */
import { encodePng } from './png.ts';
import type { ImageLayout } from './windows.ts';

/** Channel-summed values of an [H, W, C] or [C, H, W] sample, as H × W. */
function plane(values: Float32Array, layout: ImageLayout): Float64Array {
  const { height, width, channels, channelsFirst } = layout;
  const result = new Float64Array(height * width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let channel = 0; channel < channels; channel++) {
        sum += values[channelsFirst ? (channel * height + y) * width + x : (y * width + x) * channels + channel]!;
      }
      result[y * width + x] = sum;
    }
  }
  return result;
}

export interface HeatmapOptions {
  input: Float32Array;
  attributions: Float32Array;
  layout: ImageLayout;
  /** Output pixels per input pixel; default makes the longer side at least 224 pixels. */
  scale?: number;
}

export function heatmapScale(layout: ImageLayout): number {
  return Math.max(1, Math.min(16, Math.floor(224 / Math.max(layout.height, layout.width))));
}

export function renderHeatmapPng(options: HeatmapOptions): { png: Buffer; width: number; height: number } {
  const { layout } = options;
  const scale = options.scale ?? heatmapScale(layout);
  const image = plane(options.input, layout);
  const heat = plane(options.attributions, layout);
  let low = Infinity;
  let high = -Infinity;
  let largest = 0;
  for (let index = 0; index < image.length; index++) {
    low = Math.min(low, image[index]!);
    high = Math.max(high, image[index]!);
    largest = Math.max(largest, Math.abs(heat[index]!));
  }
  const range = high > low ? high - low : 1;
  const width = layout.width * scale;
  const height = layout.height * scale;
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < layout.height; y++) {
    for (let x = 0; x < layout.width; x++) {
      const index = y * layout.width + x;
      // A dimmed background keeps the overlay's colours readable on white strokes.
      const gray = 0.6 * ((image[index]! - low) / range) * 255;
      const strength = largest === 0 ? 0 : Math.abs(heat[index]!) / largest;
      const alpha = Math.min(1, strength) * 0.85;
      const colour = heat[index]! >= 0 ? [255, 40, 20] : [30, 90, 255];
      const pixel = colour.map((channel) => Math.round(gray * (1 - alpha) + channel * alpha));
      for (let dy = 0; dy < scale; dy++) {
        for (let dx = 0; dx < scale; dx++) {
          const offset = ((y * scale + dy) * width + x * scale + dx) * 3;
          rgb[offset] = pixel[0]!;
          rgb[offset + 1] = pixel[1]!;
          rgb[offset + 2] = pixel[2]!;
        }
      }
    }
  }
  return { png: encodePng(width, height, rgb), width, height };
}
