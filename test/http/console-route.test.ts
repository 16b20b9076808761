/** The console route on its own: built files with their types and caching, client routes, and the not-built answer. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installErrorHandling } from '../../src/http/errors.ts';
import { consoleContentSecurityPolicy, consoleRoutes } from '../../src/http/routes/console.ts';

let directory: string;
const apps: FastifyInstance[] = [];

async function appServing(dir: string): Promise<FastifyInstance> {
  const app = Fastify();
  installErrorHandling(app);
  await app.register(consoleRoutes, { directory: dir });
  await app.ready();
  apps.push(app);
  return app;
}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'aiaas-console-build-'));
  await mkdir(join(directory, 'assets'));
  await writeFile(join(directory, 'index.html'), '<!doctype html><title>console</title><script type="module" src="/console/assets/index-abc123.js"></script>');
  await writeFile(join(directory, 'assets/index-abc123.js'), 'console.log("app")');
  await writeFile(join(directory, 'assets/index-abc123.css'), 'body{}');
  await writeFile(join(directory, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  await writeFile(join(directory, 'notes.exe'), 'MZ');
});

afterAll(async () => {
  for (const app of apps) await app.close();
  await rm(directory, { recursive: true, force: true });
});

describe('console route', () => {
  it('redirects / to /console/', async () => {
    const app = await appServing(directory);
    const response = await app.inject({ method: 'GET', url: '/' });
    expect(response.statusCode).toBe(302);
    expect(response.headers.location).toBe('/console/');
  });

  it('serves index.html for the app and its client routes, revalidated, with the strict CSP', async () => {
    const app = await appServing(directory);
    for (const url of ['/console', '/console/', '/console/jobs/job_123', '/console/models/digits']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(200);
      expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(response.headers['cache-control']).toBe('no-cache');
      expect(response.headers['content-security-policy']).toBe(consoleContentSecurityPolicy);
      expect(response.body).toContain('<title>console</title>');
    }
    expect(consoleContentSecurityPolicy).toContain("script-src 'self'");
    expect(consoleContentSecurityPolicy).not.toContain('unsafe-inline');
  });

  it('serves hashed assets with their content type, cached for good; other files by type', async () => {
    const app = await appServing(directory);
    const script = await app.inject({ method: 'GET', url: '/console/assets/index-abc123.js' });
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(script.body).toBe('console.log("app")');
    const style = await app.inject({ method: 'GET', url: '/console/assets/index-abc123.css' });
    expect(style.headers['content-type']).toBe('text/css; charset=utf-8');
    const icon = await app.inject({ method: 'GET', url: '/console/favicon.svg' });
    expect(icon.headers['content-type']).toBe('image/svg+xml');
    expect(icon.headers['cache-control']).toBe('no-cache');
  });

  it('answers 404 for a missing asset or unknown file type, and never reads outside the build', async () => {
    const app = await appServing(directory);
    for (const url of ['/console-admin', '/consoles', '/console/assets/index-old.js', '/console/notes.exe', '/console/missing.png', '/console/..%2f..%2fetc%2fpasswd.txt']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(404);
      expect(response.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
    }
    // A dotted path without an extension is a client route: the app answers, not the file system.
    const traversal = await app.inject({ method: 'GET', url: '/console/..%2f..%2fpackage' });
    expect(traversal.body).toContain('<title>console</title>');
  });

  it('says to run npm run build when the console is not built, and serves it once built', async () => {
    const later = join(directory, 'not-yet');
    const app = await appServing(later);
    const response = await app.inject({ method: 'GET', url: '/console/' });
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.body).toContain('npm run build');
    await mkdir(later);
    await writeFile(join(later, 'index.html'), '<!doctype html><title>built later</title>');
    const built = await app.inject({ method: 'GET', url: '/console/' });
    expect(built.statusCode).toBe(200);
    expect(built.body).toContain('built later');
  });
});
