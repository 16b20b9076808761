/**
 * The web console: a single-page app built by Vite into dist/console (`npm run build`), served at
 * /console with its own strict CSP. Files are read into memory once (the whole app is a few hundred
 * KiB) and only those files are served, so no request path ever reaches the file system.
 */
import { readdir, readFile } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { AiaasError } from '../../errors.ts';
import { consoleSchemas } from '../schemas/console.ts';

/** Where `npm run build` writes the console: <repo>/dist/console, from src/http/routes or dist/http/routes alike. */
export const defaultConsoleDir = fileURLToPath(new URL('../../../dist/console', import.meta.url));

/** Scripts and styles only from the console's own files; API calls only to this origin. */
export const consoleContentSecurityPolicy =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const contentTypes: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

interface ConsoleFile {
  body: Buffer;
  contentType: string;
}

export interface ConsoleRouteOptions {
  /** The built console; defaults to dist/console. */
  directory?: string;
}

async function walk(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map(async (entry) => {
      const path = join(directory, entry.name);
      if (entry.isDirectory()) return walk(path);
      return entry.isFile() ? [path] : [];
    }),
  );
  return nested.flat();
}

/** Every file of the build keyed by its URL path below /console/ (`index.html`, `assets/index-3f2a.js`). */
async function loadBuild(directory: string): Promise<Map<string, ConsoleFile> | undefined> {
  let paths: string[];
  try {
    paths = await walk(directory);
  } catch {
    return undefined;
  }
  const files = new Map<string, ConsoleFile>();
  for (const path of paths) {
    const contentType = contentTypes[extname(path).toLowerCase()];
    if (contentType === undefined) continue;
    files.set(relative(directory, path).split(sep).join('/'), { body: await readFile(path), contentType });
  }
  return files.has('index.html') ? files : undefined;
}

const notBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>aiaas console not built</title></head>
<body><h1>The web console is not built</h1>
<p>Run <code>npm run build</code> (it runs on <code>npm install</code>) and reload this page.</p></body></html>
`;

export async function consoleRoutes(app: FastifyInstance, options: ConsoleRouteOptions): Promise<void> {
  const directory = options.directory ?? defaultConsoleDir;
  // Loaded on first use, and retried while missing, so a build made after the server started is served.
  let build: Map<string, ConsoleFile> | undefined;
  const files = async () => (build ??= await loadBuild(directory));

  const send = async (reply: FastifyReply, path: string) => {
    reply.header('content-security-policy', consoleContentSecurityPolicy);
    const loaded = await files();
    if (loaded === undefined) {
      return reply.status(503).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(notBuiltPage);
    }
    const exact = loaded.get(path);
    // Client routes (/console/jobs/…) are the app's own pages: the same index.html answers them.
    // A missing asset or file with an extension is a real 404, not the app.
    const file = exact ?? (path.startsWith('assets/') || extname(path) !== '' ? undefined : loaded.get('index.html'));
    if (file === undefined) throw new AiaasError('NOT_FOUND', `No console file ${path.slice(0, 200)}`);
    // Hashed asset names change with their content: cached for good. index.html is always revalidated.
    const immutable = exact !== undefined && path.startsWith('assets/');
    reply.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    return reply.type(file.contentType).send(file.body);
  };

  const config = { public: true } as const;
  app.get('/', { schema: consoleSchemas.root, config }, async (_request, reply) => reply.redirect('/console/', 302));
  // One wildcard route for /console, /console/ and everything below (a second route would share its OpenAPI operation id).
  app.get<{ Params: { '*': string } }>('/console*', { schema: consoleSchemas.page, config }, async (request, reply) => {
    const rest = request.params['*'];
    if (rest !== '' && !rest.startsWith('/')) throw new AiaasError('NOT_FOUND', `No route GET /console${rest.slice(0, 200)}`);
    return send(reply, rest.length <= 1 ? 'index.html' : rest.slice(1));
  });
}
