import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../http/helpers.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * What an application developer does: `npm pack` the project, install the tarball into a fresh
 * project, `import … from 'aiaas/sdk'`, type-check against the shipped declarations and call a
 * live server. The tarball is unpacked where npm would put it, with only the SDK's one type
 * dependency beside it (TypeBox) and none of the server's (Fastify, ONNX Runtime, SQLite, llama.cpp):
 * an SDK that loaded server code would fail to import here.
 */
describe('the SDK from an npm pack tarball', () => {
  let project: string;
  let server: TestServer;
  let baseUrl: string;

  beforeAll(async () => {
    expect(existsSync(join(root, 'dist', 'sdk', 'index.js')), 'dist/ is built by `npm install` (prepare)').toBe(true);
    // What `prepack` adds to the build: the SDK's bundled declarations.
    await run('npm', ['run', '--silent', 'build:sdk-types'], { cwd: root });
    project = await mkdtemp(join(tmpdir(), 'aiaas-sdk-consumer-'));
    await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', project], { cwd: root });
    const [tarball] = (await readdir(project)).filter((name) => name.endsWith('.tgz'));
    const installed = join(project, 'node_modules', 'aiaas');
    await mkdir(installed, { recursive: true });
    await run('tar', ['-xzf', join(project, tarball!), '-C', installed, '--strip-components=1']);
    await cp(join(root, 'node_modules', '@sinclair', 'typebox'), join(project, 'node_modules', '@sinclair', 'typebox'), { recursive: true });
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));

    server = await startTestServer();
    await server.app.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(server.app.server.address() as AddressInfo).port}`;
  }, 240_000);

  afterAll(async () => {
    await server?.close();
    if (project !== undefined) await rm(project, { recursive: true, force: true });
  });

  it('ships the SDK, its declarations and no tests', async () => {
    const installed = join(project, 'node_modules', 'aiaas');
    expect(existsSync(join(installed, 'dist', 'sdk', 'index.js'))).toBe(true);
    expect(existsSync(join(installed, 'dist', 'sdk', 'index.d.ts'))).toBe(true);
    expect(existsSync(join(installed, 'test'))).toBe(false);
  });

  it('imports, type-checks and talks to a live server', async () => {
    await writeFile(
      join(project, 'consumer.ts'),
      `import { AiaasApiError, AiaasClient, type Model } from 'aiaas/sdk';

const client = new AiaasClient({ baseUrl: process.argv[2]!, apiKey: process.argv[3]! });
const me = await client.me();
const created: Model = await client.models.create({ name: 'from-the-sdk', description: 'made by a consumer' });
const names: string[] = (await client.models.list()).map((model) => model.name);
let missing = '';
try {
  await client.models.get('no-such-model');
} catch (error) {
  if (error instanceof AiaasApiError) missing = \`\${error.status} \${error.code}\`;
}
console.log(JSON.stringify({ tenant: me.tenant.name, created: created.name, names, missing }));
`,
    );
    // The consumer's own strict type-check, resolving 'aiaas/sdk' through package.json "exports".
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const typeCheck = await run(
      process.execPath,
      [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--typeRoots', join(root, 'node_modules', '@types'), '--types', 'node', 'consumer.ts'],
      { cwd: project },
    ).catch((error: { stdout?: string }) => ({ stdout: `type-check failed: ${error.stdout ?? String(error)}` }));
    expect(typeCheck.stdout).toBe('');

    // Node strips nothing here: the consumer runs as JavaScript, so compile it the way an app would.
    await run(process.execPath, [tsc, '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--typeRoots', join(root, 'node_modules', '@types'), '--types', 'node', 'consumer.ts'], { cwd: project });
    const { stdout } = await run(process.execPath, ['consumer.js', baseUrl, server.adminKey], { cwd: project });
    expect(JSON.parse(stdout)).toEqual({ tenant: 'default', created: 'from-the-sdk', names: ['from-the-sdk'], missing: '404 MODEL_NOT_FOUND' });
  });

  it('refuses deep imports of server code', async () => {
    await writeFile(join(project, 'deep.mjs'), "await import('aiaas/dist/startup/start.js');\n");
    const failure = await run(process.execPath, ['deep.mjs'], { cwd: project }).catch((error: { stderr?: string }) => error);
    expect(String((failure as { stderr?: string }).stderr)).toContain('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });
});
