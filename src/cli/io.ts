/** Where a CLI command reads its environment and writes its output; injected so tests capture both. */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Interactive input (`aiaas chat`); the binary passes process.stdin. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}
