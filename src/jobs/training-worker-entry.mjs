// Worker threads do not inherit tsx from the parent, and Node 20 does not apply `--import` hooks to a
// worker's entry module, so this plain-JS entry registers tsx and then loads the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./training-worker.ts');
