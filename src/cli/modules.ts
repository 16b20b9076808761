import { CliFailure } from './command.ts';

/**
 * Imports a module another part of the system provides (the server, admin tools) only when a
 * command needs it, so a client-only command never pays for loading the server, and a build
 * without it still runs every other command.
 */
export async function loadOptionalModule<T>(specifier: string, what: string): Promise<T> {
  const url = new URL(specifier, import.meta.url);
  try {
    return (await import(url.href)) as T;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes(url.pathname.split('/').pop() ?? '')) {
      throw new CliFailure('NOT_AVAILABLE', `${what} is not part of this build (missing ${specifier.replace(/^\.\.\//, 'src/')})`);
    }
    throw error;
  }
}
