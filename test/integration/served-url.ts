import type { ChildProcess } from 'node:child_process';

/** The URL a spawned `aiaas serve` prints once it listens; rejects with its output if it exits first. */
export function servedUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code, signal) => reject(new Error(`server exited (${code ?? signal}) before listening: ${output}`)));
  });
}
