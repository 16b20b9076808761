import type { CommandDefinition } from '../command.ts';
import { loadOptionalModule } from '../modules.ts';

export const serveCommand: CommandDefinition = {
  path: ['serve'],
  summary: 'start the server',
  usage: '[--host HOST] [--port PORT] [--data-dir DIR] [--config FILE] [--insecure-dev] [--tls-cert FILE] [--tls-key FILE]',
  options: {
    host: { type: 'string', valueName: 'HOST', description: 'interface to listen on (AIAAS_HOST; default 127.0.0.1)' },
    port: { type: 'string', valueName: 'PORT', description: 'TCP port, 0 for any free one (AIAAS_PORT; default 8080)' },
    'data-dir': { type: 'string', valueName: 'DIR', description: 'database, encrypted artifacts and secrets (AIAAS_DATA_DIR; default ./aiaas-data)' },
    config: { type: 'string', valueName: 'FILE', description: 'JSON file of settings (AIAAS_CONFIG)' },
    'insecure-dev': { type: 'boolean', description: 'development only: keep a generated master key in the data directory' },
    'tls-cert': { type: 'string', valueName: 'FILE', description: 'PEM certificate; with --tls-key, serve HTTPS' },
    'tls-key': { type: 'string', valueName: 'FILE', description: 'PEM private key for --tls-cert' },
  },
  async run() {
    await loadOptionalModule('../server/start.ts', 'the server');
    return 0;
  },
};
