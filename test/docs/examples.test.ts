/**
 * Docs that test themselves: every shell example of README.md, docs/*.md and the examples' README.md files runs, in document order per file,
 * against a live `aiaas serve` on a fresh data directory, and must succeed (exit 0; curl runs as `--fail-with-body`,
 * so an HTTP status of 400 or more fails it). Blocks marked `<!-- docs-test: skip — REASON -->` are listed as skipped
 * with their reason. The rule is in docs/architecture.md ("Docs that test themselves").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMasterKey } from '../../src/security/key-ring.ts';
import { readDocExamples, withExpectedStatuses, type DocExample } from './doc-examples.ts';

const root = new URL('../..', import.meta.url).pathname;
const exampleReadmes = readdirSync(join(root, 'examples'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(join(root, 'examples', entry.name, 'README.md')))
  .map((entry) => `examples/${entry.name}/README.md`)
  .sort();
const allDocFiles = ['README.md', ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`), ...exampleReadmes];
/** `DOCS_TEST_FILES=README.md,docs/cli.md npx vitest run test/docs` runs only those files' examples (while editing them). */
const docFiles = process.env.DOCS_TEST_FILES ? allDocFiles.filter((file) => process.env.DOCS_TEST_FILES!.split(',').includes(file)) : allDocFiles;
/** Generous: a block that trains runs a few epochs, on a loaded 2-core machine. */
const blockTimeoutMs = 300_000;

/** Sourced before each block: strict mode, curl that fails on HTTP errors, the variables earlier blocks set. */
const prelude = `set -euo pipefail
# curl fails on an HTTP status >= 400, unless the example names the status it shows ("# → 403").
curl() {
  if [ -z "\${DOCS_TEST_EXPECT_STATUS:-}" ]; then command curl --fail-with-body "$@"; return; fi
  local expected=$DOCS_TEST_EXPECT_STATUS headers status
  headers=$(mktemp)
  DOCS_TEST_EXPECT_STATUS= command curl "$@" -D "$headers" || { rm -f "$headers"; return 1; }
  status=$(awk '/^HTTP\\//{ status = $2 } END { print status }' "$headers")
  rm -f "$headers"
  if [ "$status" != "$expected" ]; then echo "docs-test: expected HTTP $expected, got HTTP $status" >&2; return 1; fi
}
npx() {
  if [ "\${1:-}" = aiaas ]; then echo "docs-test: write 'aiaas' (bin/ on PATH), not 'npx aiaas': npm exec re-runs the package's prepare script first" >&2; return 2; fi
  command npx "$@"
}
source "$DOCS_TEST_STATE"
cd "$DOCS_TEST_CWD"
`;

/** Appended after each block: keeps its variables and working directory for the next block of the file. */
const epilogue = `
__docs_test_save() {
  local name
  for name in $(compgen -v); do
    case $name in
      BASH*|PIPESTATUS|FUNCNAME|GROUPS|SHLVL|_|PWD|OLDPWD|SHELLOPTS|EUID|PPID|UID|HOSTNAME|HOSTTYPE|MACHTYPE|OSTYPE|RANDOM|SRANDOM|SECONDS|LINENO|COLUMNS|LINES|HISTCMD|EPOCHREALTIME|EPOCHSECONDS|DIRSTACK|COMP_WORDBREAKS|OPTIND|OPTARG|OPTERR|IFS|PS1|PS2|PS4|DOCS_TEST_*|name) continue ;;
    esac
    [[ \${!name@a} == *r* ]] && continue
    declare -p "$name" 2>/dev/null | sed -E 's/^declare -/declare -g/; s/^declare -g-/declare -g/'
  done > "$DOCS_TEST_STATE.next"
  printf 'DOCS_TEST_CWD=%q\\n' "$PWD" >> "$DOCS_TEST_STATE.next"
  mv "$DOCS_TEST_STATE.next" "$DOCS_TEST_STATE"
}
__docs_test_save
`;

interface RunResult {
  readonly code: number | null;
  readonly output: string;
}

/** Runs a script in its own process group, so a timeout ends everything it started. */
function runScript(scriptFile: string, environment: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn('bash', [scriptFile], { env: environment, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.length > 200_000) output = output.slice(-100_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      output += `\n[docs-test: killed after ${timeoutMs / 1000} s]`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** A working directory shaped like a fresh clone: the files the docs refer to, by relative path. */
function prepareWorkingDirectory(directory: string): void {
  for (const name of ['bin', 'src', 'dist', 'node_modules', 'package.json', 'tsconfig.json']) symlinkSync(join(root, name), join(directory, name));
  cpSync(join(root, 'examples'), join(directory, 'examples'), { recursive: true, filter: (source) => !source.endsWith('/mnist-mlp/data') });
}

interface LiveServer {
  readonly child: ChildProcess;
  readonly url: string;
  /** The admin key the server printed at its first start, as the README's quick start has the reader copy it. */
  readonly adminKey: string;
}

function startServer(cwd: string, environment: NodeJS.ProcessEnv): Promise<LiveServer> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin/aiaas.js'), 'serve', '--port', '0', '--data-dir', './aiaas-data'], {
      cwd,
      // Quieter logs, and llama.cpp on one thread as every test runs it (a shared CI machine).
      env: { ...environment, AIAAS_LOG_LEVEL: 'warn', AIAAS_LLM_THREADS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /aiaas listening on (http:\/\/\S+)/.exec(output);
      if (!match) return;
      const adminKey = /^\s*(aiaas_\S+)\s*$/m.exec(output);
      if (adminKey) resolve({ child, url: match[1]!, adminKey: adminKey[1]! });
      else reject(new Error(`aiaas serve did not print the first admin key:\n${output}`));
    };
    child.stdout!.on('data', () => {});
    child.stderr!.on('data', onData);
    child.on('exit', (code, signal) => reject(new Error(`aiaas serve exited (${code ?? signal}) before listening:\n${output}`)));
  });
}

function stopServer(server: LiveServer): Promise<void> {
  return new Promise((resolve) => {
    if (server.child.exitCode !== null || server.child.signalCode !== null) return resolve();
    const force = setTimeout(() => server.child.kill('SIGKILL'), 15_000);
    server.child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    server.child.kill('SIGTERM');
  });
}

function describeBlock(example: DocExample): string {
  const firstCommand = example.script.split('\n').find((line) => line.trim() !== '' && !line.trimStart().startsWith('#')) ?? '';
  return `${example.file}:${example.line} ${firstCommand.trim().slice(0, 70)}`;
}

for (const file of docFiles) {
  const examples = readDocExamples(root, file);
  if (examples.length === 0) continue;
  const runnable = examples.filter((example) => example.skipReason === undefined);

  describe(`docs examples: ${file}`, () => {
    let directory = '';
    let server: LiveServer | undefined;
    let environment: NodeJS.ProcessEnv = {};
    let failedBefore: string | undefined;

    beforeAll(async () => {
      if (runnable.length === 0) return;
      directory = mkdtempSync(join(tmpdir(), 'aiaas-docs-test-'));
      prepareWorkingDirectory(directory);
      const base: NodeJS.ProcessEnv = {
        ...process.env,
        PATH: `${join(root, 'bin')}:${join(root, 'node_modules/.bin')}:${process.env.PATH ?? ''}`,
        AIAAS_MASTER_KEY: generateMasterKey(),
      };
      for (const inherited of ['AIAAS_SERVER', 'AIAAS_API_KEY', 'AIAAS_BOOTSTRAP_KEY', 'AIAAS_DEBUG', 'AIAAS_DATA_DIR', 'AIAAS_CONFIG']) delete base[inherited];
      server = await startServer(directory, base);
      environment = { ...base, AIAAS_SERVER: server.url, AIAAS_API_KEY: server.adminKey, DOCS_TEST_STATE: join(directory, '.docs-test-state'), DOCS_TEST_CWD: directory };
      writeFileSync(environment.DOCS_TEST_STATE!, '');
    });

    afterAll(async () => {
      if (server) await stopServer(server);
      if (directory) rmSync(directory, { recursive: true, force: true });
    });

    for (const [index, example] of examples.entries()) {
      if (example.skipReason !== undefined) {
        it.skip(`${describeBlock(example)} — skipped: ${example.skipReason}`, () => {});
        continue;
      }
      it(describeBlock(example), async () => {
        // A failed block usually leaves what later ones need undone: report the first failure, not its echoes.
        expect(failedBefore, `an earlier block of ${file} failed`).toBeUndefined();
        const scriptFile = join(directory, `.docs-test-block-${index}.sh`);
        writeFileSync(scriptFile, `${prelude}\n${withExpectedStatuses(example.script)}\n${epilogue}`);
        const result = await runScript(scriptFile, environment, blockTimeoutMs);
        if (result.code !== 0) failedBefore = describeBlock(example);
        expect(result.code, `${example.file}:${example.line} exited ${result.code}:\n--- script ---\n${example.script}\n--- output ---\n${result.output}`).toBe(0);
      }, blockTimeoutMs + 30_000);
    }
  });
}
