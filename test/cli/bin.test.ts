import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/aiaas.js', import.meta.url));

function runBin(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...process.env, AIAAS_SERVER: '', AIAAS_API_KEY: '' } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

describe('bin/aiaas.js', () => {
  it('is executable', () => {
    expect(() => accessSync(bin, constants.X_OK)).not.toThrow();
  });

  it('--help exits 0 and prints the usage', async () => {
    const result = await runBin(['--help']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^Usage: aiaas <command>/);
  });

  it('exits 2 on an unknown command, without a stack trace', async () => {
    const result = await runBin(['frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe("error USAGE: unknown command \"frobnicate\"\nRun 'aiaas --help' for usage.\n");
  });
});
