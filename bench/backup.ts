/**
 * `npm run bench:backup -- [ARTIFACTS] [AUDIT_ROWS]`: backup, verify and restore times for a data
 * directory with ARTIFACTS files of 64 KiB (default 500) and AUDIT_ROWS extra audit rows (default
 * 200000, to give the database some size), and how long the server's event loop stalls while it
 * backs itself up (POST /api/v1/admin/backups). Prints JSON.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import { pino } from 'pino';
import { loadConfig } from '../src/config.ts';
import { buildApp } from '../src/http/app.ts';
import { generateMasterKey } from '../src/security/key-ring.ts';
import { backupDataDirectory, restoreDataDirectory } from '../src/startup/backups.ts';
import { createServerContext } from '../src/startup/context.ts';
import { verifyBackup } from '../src/storage/backup/index.ts';

const artifacts = Number(process.argv[2] ?? 500);
const auditRows = Number(process.argv[3] ?? 200_000);
const scratch = await mkdtemp(join(tmpdir(), 'aiaas-bench-backup-'));
const bootstrapKey = `aiaas_${'b'.repeat(43)}`;
const config = loadConfig({
  flags: { dataDir: join(scratch, 'data'), backupDir: join(scratch, 'backups'), masterKey: generateMasterKey(), bootstrapKey, logLevel: 'silent' },
  env: {},
});
const context = await createServerContext(config, { logger: pino({ level: 'silent' }) });
const app = await buildApp(context);
try {
  for (let index = 0; index < artifacts; index++) await context.artifactStore.put(randomBytes(64 * 1024));
  const database = new BetterSqlite3(config.databasePath);
  const insert = database.prepare(
    "INSERT INTO audit_log (tenant_id, key_id, action, resource, outcome, ip, at, detail_json, prev_hash, hash) VALUES (NULL, NULL, 'bench', 'r', 'success', '127.0.0.1', '2026-01-01T00:00:00.000Z', ?, ?, ?)",
  );
  database.transaction(() => {
    for (let index = 0; index < auditRows; index++) insert.run(JSON.stringify({ requestId: randomBytes(8).toString('hex') }), `p${index}`, `h${index}`);
  })();
  database.close();
  const databaseBytes = (await stat(config.databasePath)).size;

  let started = performance.now();
  const offline = await backupDataDirectory(config, context.keys.ring, join(scratch, 'cli-backup'));
  const cliBackupMs = performance.now() - started;

  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  started = performance.now();
  const response = await app.inject({ method: 'POST', url: '/api/v1/admin/backups', headers: { authorization: `Bearer ${bootstrapKey}` } });
  const serverBackupMs = performance.now() - started;
  delay.disable();
  if (response.statusCode !== 201) throw new Error(response.body);

  started = performance.now();
  const verified = await verifyBackup(offline.path);
  const verifyMs = performance.now() - started;
  started = performance.now();
  await restoreDataDirectory(offline.path, join(scratch, 'restored'), context.keys.ring);
  const restoreMs = performance.now() - started;
  console.log(
    JSON.stringify({
      artifacts,
      databaseMiB: Math.round((databaseBytes / 2 ** 20) * 10) / 10,
      backupMiB: Math.round((offline.manifest.counts.bytes / 2 ** 20) * 10) / 10,
      cliBackupMs: Math.round(cliBackupMs),
      serverBackupMs: Math.round(serverBackupMs),
      serverEventLoopMaxStallMs: Math.round(delay.max / 1e6),
      serverEventLoopP99StallMs: Math.round(delay.percentile(99) / 1e6),
      verifyOk: verified.ok,
      verifyMs: Math.round(verifyMs),
      restoreMs: Math.round(restoreMs),
    }),
  );
} finally {
  await app.close();
  await context.close();
  await rm(scratch, { recursive: true, force: true });
}
