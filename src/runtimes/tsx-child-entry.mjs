// Entry of a forkIsolated child started from the TypeScript sources: child processes do not inherit
// tsx from the parent, so this plain-JS file registers it and then loads the module named by argv[2].
// From the compiled dist/ the .js module is forked directly and this file is not used.
import { register } from 'tsx/esm/api';

register();
await import(process.argv[2]);
