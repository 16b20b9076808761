/**
 * Turns a drawing into a 28×28 MNIST-style image: MNIST digits were size-normalised to fit a 20×20
 * box (keeping their aspect ratio, anti-aliased), then placed in a 28×28 field so that their centre
 * of mass is at the centre. Values are 0 (background) to 255 (ink), white ink on black as in MNIST.
 */
export function mnistPixels(source: HTMLCanvasElement): Float32Array | undefined {
  const context = source.getContext('2d', { willReadFrequently: true })!;
  const { width, height } = source;
  const image = context.getImageData(0, 0, width, height).data;
  let top = height;
  let bottom = -1;
  let left = width;
  let right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (image[(y * width + x) * 4]! > 20) {
        if (y < top) top = y;
        if (y > bottom) bottom = y;
        if (x < left) left = x;
        if (x > right) right = x;
      }
    }
  }
  if (bottom < 0) return undefined;
  const boxWidth = right - left + 1;
  const boxHeight = bottom - top + 1;
  const scale = 20 / Math.max(boxWidth, boxHeight);
  const scaledWidth = Math.max(1, Math.round(boxWidth * scale));
  const scaledHeight = Math.max(1, Math.round(boxHeight * scale));
  // Halve in steps: one big drawImage step aliases thin strokes away.
  let current: HTMLCanvasElement = document.createElement('canvas');
  current.width = boxWidth;
  current.height = boxHeight;
  current.getContext('2d')!.drawImage(source, left, top, boxWidth, boxHeight, 0, 0, boxWidth, boxHeight);
  while (current.width / 2 > scaledWidth && current.height / 2 > scaledHeight) {
    const half = document.createElement('canvas');
    half.width = Math.ceil(current.width / 2);
    half.height = Math.ceil(current.height / 2);
    const halfContext = half.getContext('2d')!;
    halfContext.imageSmoothingQuality = 'high';
    halfContext.drawImage(current, 0, 0, half.width, half.height);
    current = half;
  }
  const small = document.createElement('canvas');
  small.width = scaledWidth;
  small.height = scaledHeight;
  const smallContext = small.getContext('2d', { willReadFrequently: true })!;
  smallContext.imageSmoothingQuality = 'high';
  smallContext.drawImage(current, 0, 0, scaledWidth, scaledHeight);
  const pixels = smallContext.getImageData(0, 0, scaledWidth, scaledHeight).data;
  let mass = 0;
  let sumX = 0;
  let sumY = 0;
  for (let y = 0; y < scaledHeight; y++) {
    for (let x = 0; x < scaledWidth; x++) {
      const value = pixels[(y * scaledWidth + x) * 4]!;
      mass += value;
      sumX += value * x;
      sumY += value * y;
    }
  }
  const shiftX = Math.round(14 - (mass === 0 ? scaledWidth / 2 : sumX / mass + 0.5));
  const shiftY = Math.round(14 - (mass === 0 ? scaledHeight / 2 : sumY / mass + 0.5));
  const result = new Float32Array(28 * 28);
  for (let y = 0; y < scaledHeight; y++) {
    for (let x = 0; x < scaledWidth; x++) {
      const targetX = x + shiftX;
      const targetY = y + shiftY;
      if (targetX < 0 || targetX >= 28 || targetY < 0 || targetY >= 28) continue;
      result[targetY * 28 + targetX] = pixels[(y * scaledWidth + x) * 4]!;
    }
  }
  return result;
}

/** A 28×28 preview of what the model sees, scaled up with crisp pixels. */
export function drawPreview(target: HTMLCanvasElement, pixels: Float32Array): void {
  const context = target.getContext('2d')!;
  const image = context.createImageData(28, 28);
  for (let index = 0; index < 28 * 28; index++) {
    const value = pixels[index]!;
    image.data[index * 4] = value;
    image.data[index * 4 + 1] = value;
    image.data[index * 4 + 2] = value;
    image.data[index * 4 + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}
