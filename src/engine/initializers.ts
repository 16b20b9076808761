import type { ParameterSpec } from './plan.ts';
import type { Random } from './random.ts';

/** Keras' initialisers: glorot uniform (kernels), he normal (truncated at 2σ, as Keras), zeros (biases); ones (a normalization layer's variance before it is adapted). */
export function initialValues(parameter: ParameterSpec, random: Random): Float32Array {
  const count = parameter.shape.reduce((total, dimension) => total * dimension, 1);
  const values = new Float32Array(count);
  switch (parameter.initializer) {
    case 'zeros':
      return values;
    case 'ones':
      return values.fill(1);
    case 'glorotUniform': {
      const limit = Math.sqrt(6 / (parameter.fanIn + parameter.fanOut));
      for (let index = 0; index < count; index++) values[index] = (random.next() * 2 - 1) * limit;
      return values;
    }
    case 'heNormal': {
      // Keras divides by 0.8796 so the truncated normal keeps the intended variance.
      const deviation = Math.sqrt(2 / parameter.fanIn) / 0.87962566103423978;
      for (let index = 0; index < count; index++) {
        let sample = random.normal();
        while (Math.abs(sample) > 2) sample = random.normal();
        values[index] = sample * deviation;
      }
      return values;
    }
  }
}
