/**
 * `aiaas serve`: context + app + listen (HTTPS when a certificate is configured), the bootstrap
 * key printed once to stderr, and a graceful shutdown on SIGTERM/SIGINT.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AiaasConfig } from '../config.ts';
import { buildApp } from '../http/app.ts';
import { createServerContext, type ServerContext } from './context.ts';

export interface StartServerOptions {
  /** Install SIGTERM/SIGINT handlers that close the server and exit (default true). */
  handleSignals?: boolean;
  /** Where the generated bootstrap key is printed; default process.stderr (not the log). */
  printSecret?: (text: string) => void;
  logger?: Logger;
  now?: () => Date;
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  context: ServerContext;
  /** Milliseconds from the call to listening. */
  startupMs: number;
  close(): Promise<void>;
}

export async function startServer(config: AiaasConfig, options: StartServerOptions = {}): Promise<RunningServer> {
  const started = performance.now();
  const context = await createServerContext(config, {
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  let app: FastifyInstance;
  try {
    app = await buildApp(context);
  } catch (error) {
    await context.close();
    throw error;
  }
  let url: string;
  try {
    url = await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await app.close();
    await context.close();
    throw error;
  }
  // Queued jobs, and running ones a crashed server left behind (once their lease expires), resume now.
  context.jobs.start();
  context.backups.start();
  context.storageSampler.start();
  const startupMs = performance.now() - started;
  context.logger.info({ url, startupMs: Math.round(startupMs * 10) / 10 }, 'aiaas listening');

  if (context.bootstrap.generatedKey !== undefined) {
    const print = options.printSecret ?? ((text: string) => process.stderr.write(text));
    print(
      `\nFirst start: created tenant "default" and its admin API key. It is shown only this once:\n\n  ${context.bootstrap.generatedKey}\n\n` +
        'Store it now (export AIAAS_API_KEY=...). Set AIAAS_BOOTSTRAP_KEY to choose it yourself next time.\n\n',
    );
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      try {
        await context.jobs.close();
        // Stops accepting, lets in-flight requests finish, then runs onClose hooks.
        await app.close();
        await context.close();
      } finally {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
    })();
    return closing;
  };

  // Removed once close() is done, so servers closed in-process (tests, embedders) leave no listeners behind.
  const onSignal = (signal: NodeJS.Signals) => {
    context.logger.info({ signal }, 'shutting down');
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        context.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  if (options.handleSignals !== false) {
    // `on`, not `once`: signal-exit (used by node-llama-cpp's lockfiles) re-raises a signal no other
    // listener remains for, killing the process mid-shutdown; a repeated signal just joins the close.
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  return { url, app, context, startupMs, close };
}
