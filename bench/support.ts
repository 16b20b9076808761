/** What the serving benchmarks share: a free port, a child process awaited until it prints a line, a server awaited until ready. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export const repositoryRoot = new URL('..', import.meta.url).pathname;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export function startChild(command: string[], env: Record<string, string>, ready: RegExp): Promise<{ child: ChildProcess; match: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, command, { cwd: repositoryRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match) resolve({ child, match: match[0] });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`child exited with ${code}: ${output}`)));
  });
}

export async function waitReady(baseUrl: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      if ((await fetch(`${baseUrl}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (attempt > 100) throw new Error('server did not become ready');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Environment for a benchmarked `aiaas serve`: a fixed bootstrap key and no per-key rate limit. */
export function benchServerEnvironment(masterKey: string, apiKey: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AIAAS_MASTER_KEY: masterKey,
    AIAAS_BOOTSTRAP_KEY: apiKey,
    AIAAS_LOG_LEVEL: 'warn',
    // The benchmarks measure serving, not the per-key rate limit.
    AIAAS_RATE_LIMIT_PER_SECOND: '1000000',
    AIAAS_RATE_LIMIT_BURST: '1000000',
    ...extra,
  };
}
