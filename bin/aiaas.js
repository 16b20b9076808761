#!/usr/bin/env node
// Runs the compiled JavaScript in dist/ (built by `npm install` / `npm run build`) when it is at least as
// new as every source file: Node then starts in a fraction of the time tsx needs to compile on the fly.
// Otherwise (a checkout without a build, or sources edited since) tsx compiles the TypeScript sources.
import { fileURLToPath } from 'node:url';
import { staleBuildReason } from './build-stamp.js';

const root = fileURLToPath(new URL('..', import.meta.url));

let main;
if (staleBuildReason(root) === undefined) {
  ({ main } = await import('../dist/cli/main.js'));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}

// The first Ctrl-C or SIGTERM lets long commands (serve, jobs watch, demo) stop cleanly; a second one forces exit.
// `on`, not `once`: a dependency's signal-exit hook (node-llama-cpp's lockfiles) re-raises a signal that no
// other listener remains for, which would kill the process before the clean stop.
// A command that handles Ctrl-C itself (chat: stop the current answer) cancels the interrupt event.
const controller = new AbortController();
const interrupts = new EventTarget();
const stop = (exitCode) => () => {
  if (exitCode === 130 && !interrupts.dispatchEvent(new Event('interrupt', { cancelable: true }))) return;
  if (controller.signal.aborted) process.exit(exitCode);
  controller.abort();
};
process.on('SIGINT', stop(130));
process.on('SIGTERM', stop(143));

const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd() }, { signal: controller.signal, interrupts });
// Exit once both streams have flushed, so piped output is complete and idle sockets cannot hold the process open.
let pending = 2;
const done = () => {
  pending -= 1;
  if (pending === 0) process.exit(code);
};
process.stdout.write('', done);
process.stderr.write('', done);
