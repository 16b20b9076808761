#!/usr/bin/env node
// There is no build step: tsx compiles the TypeScript sources on the fly.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');

// The first Ctrl-C lets long commands (serve, jobs watch, demo) stop cleanly; a second one forces exit.
const controller = new AbortController();
process.on('SIGINT', () => {
  if (controller.signal.aborted) process.exit(130);
  controller.abort();
});
process.once('SIGTERM', () => controller.abort());

const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() }, { signal: controller.signal });
// Exit once both streams have flushed, so piped output is complete and idle sockets cannot hold the process open.
let pending = 2;
const done = () => {
  pending -= 1;
  if (pending === 0) process.exit(code);
};
process.stdout.write('', done);
process.stderr.write('', done);
