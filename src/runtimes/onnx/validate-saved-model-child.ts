/**
 * Child side of validate-saved-model.ts: builds the engine's network from spec.json and
 * model.safetensors (weights allocated, loaded and checked), releases it and reports.
 */
import { AiaasError } from '../../errors.ts';
import { modelFromBytes } from '../../engine/saved-model.ts';
import { connectToParent } from '../isolated-process.ts';
import type { SavedModelCheckReply, SavedModelCheckRequest } from './validate-saved-model.ts';

async function check(request: SavedModelCheckRequest): Promise<SavedModelCheckReply> {
  try {
    const model = modelFromBytes(new TextDecoder().decode(request.spec), request.weights);
    const parameters = model.plan.parameterCount;
    await model.dispose();
    return { ok: true, parameters };
  } catch (error) {
    if (AiaasError.isInstance(error)) return { ok: false, code: error.code, message: error.message };
    return { ok: false, code: 'INVALID_MODEL_FILE', message: error instanceof Error ? error.message : String(error) };
  }
}

const parent = connectToParent<SavedModelCheckReply, SavedModelCheckRequest>((request) => {
  void check(request).then(async (reply) => {
    await parent.send(reply);
    process.exit(0);
  });
});
