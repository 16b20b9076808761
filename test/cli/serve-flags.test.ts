import { describe, expect, it, vi } from 'vitest';
import { settingDefinitions } from '../../src/config.ts';
import { main } from '../../src/cli/main.ts';
import { captureIo } from './helpers.ts';

// loadConfig records what `aiaas serve` passes it and stops there, before any server starts.
vi.mock('../../src/config.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/config.ts')>();
  return {
    ...actual,
    loadConfig: vi.fn(() => {
      throw new Error('stopped at loadConfig');
    }),
  };
});

const { loadConfig } = await import('../../src/config.ts');
const loadConfigMock = vi.mocked(loadConfig);

async function serve(...argv: string[]): Promise<{ code: number; err: string; flags: unknown }> {
  loadConfigMock.mockClear();
  const io = captureIo({ env: { AIAAS_PORT: '9000' } });
  const code = await main(['serve', ...argv], io);
  return { code, err: io.err(), flags: loadConfigMock.mock.calls[0]?.[0]?.flags };
}

describe('aiaas serve flags', () => {
  it('passes settings without a hand-written option to loadConfig as flags, with the environment', async () => {
    const result = await serve('--job-concurrency', '2', '--rate-limit-per-second', '5');
    expect(result.code).toBe(1);
    expect(result.err).toContain('stopped at loadConfig');
    expect(loadConfigMock).toHaveBeenCalledTimes(1);
    expect(loadConfigMock.mock.calls[0]![0]).toMatchObject({ env: { AIAAS_PORT: '9000' } });
    expect(result.flags).toEqual({ 'job-concurrency': '2', 'rate-limit-per-second': '5' });
  });

  it('accepts a flag for every setting of settingDefinitions', async () => {
    const argv = settingDefinitions.flatMap((definition) => (definition.type === 'boolean' ? [`--${definition.flag}`] : [`--${definition.flag}`, `v-${definition.flag}`]));
    const result = await serve(...argv, '--config', 'settings.json');
    expect(result.code).toBe(1);
    expect(result.flags).toEqual({
      ...Object.fromEntries(settingDefinitions.map((definition) => [definition.flag, definition.type === 'boolean' ? true : `v-${definition.flag}`])),
      config: 'settings.json',
    });
  });

  it('passes only the booleans given: --FLAG as true, --no-FLAG as false', async () => {
    expect((await serve('--insecure-dev', '--no-warmup')).flags).toEqual({ 'insecure-dev': true, warmup: false });
    expect((await serve('--port', '0')).flags).toEqual({ port: '0' });
  });

  it('rejects --FLAG with --no-FLAG and unknown flags as usage errors, before loadConfig', async () => {
    const both = await serve('--trust-proxy', '--no-trust-proxy');
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/^error USAGE: --trust-proxy and --no-trust-proxy exclude each other\nRun 'aiaas serve --help'/);
    const unknown = await serve('--job-concurency', '2');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/^error USAGE: Unknown option '--job-concurency'\nRun 'aiaas serve --help'/);
    expect(loadConfigMock).not.toHaveBeenCalled();
  });
});
