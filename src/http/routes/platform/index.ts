import type { FastifyInstance } from 'fastify';
import { auditRoutes } from './audit.ts';
import { backupRoutes } from './backups.ts';
import { billingRoutes } from './billing.ts';
import { datasetRoutes } from './datasets.ts';
import { identityRoutes } from './identity.ts';
import { modelRoutes } from './models.ts';
import type { PlatformRouteOptions } from './support.ts';
import { usageRoutes } from './usage.ts';
import { qualityRoutes } from './quality.ts';

/** Everything under /api/v1 except training jobs; register with `{ prefix: '/api/v1', context }`. */
export async function platformRoutes(app: FastifyInstance, { context }: PlatformRouteOptions): Promise<void> {
  // Only the context passes down: handing on the whole options object would repeat the prefix.
  const options: PlatformRouteOptions = { context };
  await app.register(identityRoutes, options);
  await app.register(datasetRoutes, options);
  await app.register(modelRoutes, options);
  await app.register(auditRoutes, options);
  await app.register(backupRoutes, options);
  await app.register(usageRoutes, options);
  await app.register(billingRoutes, options);
  await app.register(qualityRoutes, options);
}
