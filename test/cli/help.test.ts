import { describe, expect, it } from 'vitest';
import { commands, main } from '../../src/cli/main.ts';
import { captureIo } from './helpers.ts';

describe('help', () => {
  it.each(commands.map((definition) => [definition.path.join(' ')]))('aiaas %s --help prints its usage and exits 0', async (name) => {
    const io = captureIo();
    expect(await main([...name.split(' '), '--help'], io)).toBe(0);
    expect(io.out()).toMatch(new RegExp(`^Usage: aiaas ${name}`, 'm'));
    expect(io.err()).toBe('');
  });

  it('documents every option of every command in its help', async () => {
    for (const definition of commands) {
      const io = captureIo();
      await main([...definition.path, '-h'], io);
      for (const option of Object.keys(definition.options ?? {})) expect(io.out(), definition.path.join(' ')).toContain(`--${option}`);
      for (const option of Object.keys(definition.moreOptions?.options ?? {})) expect(io.out(), definition.path.join(' ')).toContain(`--${option}`);
      const global = (io.out().split('Global options:')[1] ?? '').split('Examples:')[0] ?? '';
      expect(global.includes('--server'), definition.path.join(' ')).toBe(definition.server === true);
      expect(global.includes('--json'), definition.path.join(' ')).toBe(definition.json === true);
    }
  });

  it('lists every command in the main help', async () => {
    const io = captureIo();
    expect(await main(['--help'], io)).toBe(0);
    for (const definition of commands) expect(io.out()).toContain(definition.path[definition.path.length - 1]);
    expect(io.out()).toContain('AIAAS_SERVER');
  });

  it('prints group help, and `help COMMAND` works like --help', async () => {
    const group = captureIo();
    expect(await main(['jobs', '--help'], group)).toBe(0);
    expect(group.out()).toContain('jobs watch');
    const help = captureIo();
    expect(await main(['help', 'models', 'push'], help)).toBe(0);
    expect(help.out()).toMatch(/^Usage: aiaas models push NAME FILE_OR_DIR/);
  });

  it('without a command, prints the help to stderr and exits 2', async () => {
    const io = captureIo();
    expect(await main([], io)).toBe(2);
    expect(io.out()).toBe('');
    expect(io.err()).toContain('Usage: aiaas <command>');
    const groupOnly = captureIo();
    expect(await main(['datasets'], groupOnly)).toBe(2);
    expect(groupOnly.err()).toContain('datasets push');
  });
});

describe('argument errors', () => {
  const cases: [string[], RegExp][] = [
    [['bogus'], /^error USAGE: unknown command "bogus"\nRun 'aiaas --help' for usage\.\n$/],
    [['models', 'bogus'], /^error USAGE: unknown command "models bogus"\nRun 'aiaas models --help'/],
    [['datasets', 'ls', '--bogus'], /^error USAGE: Unknown option '--bogus'\nRun 'aiaas datasets ls --help'/],
    [['datasets', 'push'], /^error USAGE: missing FILE\n/],
    [['datasets', 'rm', 'a', 'b'], /^error USAGE: unexpected argument "b"\n/],
    [['models', 'alias', 'mnist', 'production'], /^error USAGE: missing VERSION\n/],
    [['models', 'alias', 'mnist', 'production', 'latest'], /^error USAGE: VERSION must be a version number ≥ 1, got "latest"\n/],
    [['jobs', 'submit', '--model', 'm', '--spec', 'x.json', '--dataset', 'd', '--epochs', '0'], /^error USAGE: --epochs must be an integer ≥ 1, got "0"/],
    [['jobs', 'submit', '--model', 'm', '--spec', 'x.json', '--dataset', 'd', '--validation-split', '1.5'], /--validation-split must be a number in \[0, 1\)/],
    [['jobs', 'ls', '--status', 'done'], /--status must be one of queued, running, succeeded, failed, cancelled/],
    [['keys', 'create', '--name', 'k', '--role', 'root'], /--role must be one of admin, developer, viewer, inference/],
    [['keys', 'create', '--name', 'k', '--role', 'viewer', '--expires', 'soon'], /--expires must be an ISO 8601 time/],
    [['keys', 'create', '--role', 'viewer'], /^error USAGE: missing --name/],
    [['predict', 'mnist@', '--input', 'x.json'], /expected MODEL, MODEL@VERSION or MODEL@ALIAS/],
    [['predict', 'mnist', '--input', 'x.json', '--protocol', 'grpc'], /--protocol must be one of v2, tfserving/],
    [['admin', 'rotate-master-key', '--new-key', 'x'], /^error USAGE: missing --data-dir/],
    [['datasets', 'ls', '--server', 'ftp://example'], /invalid --server \/ AIAAS_SERVER "ftp:\/\/example"/],
    [['demo', '--server', 'http://127.0.0.1:9', '--data-dir', 'x'], /--server and --data-dir exclude each other/],
    [['demo', '--epochs', 'ten'], /--epochs must be an integer ≥ 1, got "ten"/],
    [['demo', '--server', 'not-a-url'], /^error USAGE: invalid --server \/ AIAAS_SERVER "not-a-url"/],
  ];
  it.each(cases)('aiaas %j exits 2 with a usage error', async (argv, expected) => {
    const io = captureIo();
    expect(await main(argv, io)).toBe(2);
    expect(io.err()).toMatch(expected);
    expect(io.err()).not.toMatch(/\n\s+at /);
  });

  it('reports an invalid setting flag of serve as CONFIG_INVALID naming the flag and the variable', async () => {
    const io = captureIo();
    expect(await main(['serve', '--job-concurrency', '0'], io)).toBe(1);
    expect(io.err()).toMatch(/^error CONFIG_INVALID: Setting jobConcurrency \(--job-concurrency \/ AIAAS_JOB_CONCURRENCY\): must be at least 1/);
  });

  it('reports an unreadable file as an error, not a crash', async () => {
    const io = captureIo();
    expect(await main(['jobs', 'submit', '--model', 'm', '--spec', 'missing.json', '--dataset', 'd'], io)).toBe(1);
    expect(io.err()).toMatch(/^error FILE_UNREADABLE: cannot read spec file .*missing\.json: ENOENT\n$/);
  });

  it('prints the version', async () => {
    const io = captureIo();
    expect(await main(['--version'], io)).toBe(0);
    expect(io.out()).toMatch(/^aiaas \d+\.\d+\.\d+\n$/);
  });

  it('generates a 32-byte base64 master key', async () => {
    const io = captureIo();
    expect(await main(['admin', 'gen-master-key'], io)).toBe(0);
    expect(Buffer.from(io.out().trim(), 'base64')).toHaveLength(32);
  });
});
