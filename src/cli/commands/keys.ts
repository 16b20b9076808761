import type { Role } from '../../sdk/types.ts';
import { CliUsageError, choiceOption, requiredOption, stringOption, type CommandDefinition } from '../command.ts';
import { json, timestamp, writeListing } from '../format.ts';

const roles: readonly Role[] = ['admin', 'developer', 'viewer', 'inference'];

export const keyCommands: readonly CommandDefinition[] = [
  {
    path: ['keys', 'create'],
    summary: 'create an API key (the secret is printed once)',
    usage: '--name NAME --role admin|developer|viewer|inference [--models a,b] [--expires ISO]',
    description: 'Prints the key on stdout; it cannot be shown again. Roles: see docs/cli.md.',
    options: {
      name: { type: 'string', valueName: 'NAME', description: 'what the key is for' },
      role: { type: 'string', valueName: 'ROLE', description: 'admin, developer, viewer or inference' },
      models: { type: 'string', valueName: 'LIST', description: 'comma-separated model names the key may use (default: all)' },
      expires: { type: 'string', valueName: 'ISO', description: 'expiry time, e.g. 2026-12-31T00:00:00Z' },
    },
    server: true,
    json: true,
    examples: ['aiaas keys create --name web-app --role inference --models mnist --expires 2027-01-01T00:00:00Z'],
    async run(context) {
      const command = 'keys create';
      const name = requiredOption(context.values, 'name', command);
      const role = choiceOption(context.values, 'role', roles, command);
      if (role === undefined) throw new CliUsageError('missing --role', command);
      const models = stringOption(context.values, 'models');
      const expires = stringOption(context.values, 'expires');
      if (expires !== undefined && Number.isNaN(Date.parse(expires))) throw new CliUsageError(`--expires must be an ISO 8601 time, got "${expires}"`, command);
      const allowedModels = models?.split(',').map((model) => model.trim()).filter((model) => model !== '');
      const key = await context.client().keys.create(
        {
          name,
          role,
          ...(allowedModels === undefined ? {} : { allowedModels }),
          ...(expires === undefined ? {} : { expiresAt: new Date(expires).toISOString() }),
        },
        { signal: context.signal },
      );
      if (context.json) context.io.stdout.write(json(key));
      else {
        context.io.stdout.write(`${key.key}\n`);
        context.io.stderr.write(`created key ${key.id} (${key.role}); the secret above is shown only once\n`);
      }
      return 0;
    },
  },
  {
    path: ['keys', 'ls'],
    summary: 'list API keys (never their secrets)',
    usage: '',
    server: true,
    json: true,
    async run(context) {
      const keys = await context.client().keys.list({ signal: context.signal });
      writeListing(context, 'keys', keys, ['ID', 'NAME', 'PREFIX', 'ROLE', 'MODELS', 'EXPIRES', 'REVOKED', 'LAST USED'], (key) => [
        key.id,
        key.name,
        key.prefix,
        key.role,
        key.allowedModels === null || key.allowedModels === undefined ? '*' : key.allowedModels.join(','),
        timestamp(key.expiresAt),
        timestamp(key.revokedAt),
        timestamp(key.lastUsedAt),
      ]);
      return 0;
    },
  },
  {
    path: ['keys', 'revoke'],
    summary: 'revoke an API key (effective on its next request)',
    usage: 'ID',
    positionals: ['ID'],
    server: true,
    async run(context) {
      const id = context.positionals[0] as string;
      await context.client().keys.revoke(id, { signal: context.signal });
      context.io.stderr.write(`revoked key ${id}\n`);
      return 0;
    },
  },
];

export const tenantCommands: readonly CommandDefinition[] = [
  {
    path: ['tenants', 'create'],
    summary: "create a tenant and print its first admin key (shown once)",
    usage: 'NAME',
    positionals: ['NAME'],
    server: true,
    json: true,
    async run(context) {
      const created = await context.client().tenants.create(context.positionals[0] as string, { signal: context.signal });
      if (context.json) context.io.stdout.write(json(created));
      else {
        context.io.stdout.write(`${created.adminKey.key}\n`);
        context.io.stderr.write(`created tenant ${created.tenant.name} (${created.tenant.id}); its admin key above is shown only once\n`);
      }
      return 0;
    },
  },
  {
    path: ['tenants', 'ls'],
    summary: 'list tenants',
    usage: '',
    server: true,
    json: true,
    async run(context) {
      const tenants = await context.client().tenants.list({ signal: context.signal });
      writeListing(context, 'tenants', tenants, ['ID', 'NAME', 'CREATED'], (tenant) => [tenant.id, tenant.name, timestamp(tenant.createdAt)]);
      return 0;
    },
  },
  {
    path: ['tenants', 'rm'],
    summary: "delete a tenant and all its data, irreversibly (its data key is destroyed); needs --yes",
    usage: 'ID --yes',
    description:
      "Operator admins only. The server destroys the tenant's data key (nothing it stored can be read again), cancels its\n" +
      'jobs and deletes its datasets, models and files. The operator tenant cannot be deleted.',
    positionals: ['ID'],
    options: { yes: { type: 'boolean', description: 'confirm: the deletion cannot be undone' } },
    server: true,
    examples: ['aiaas tenants rm tn_01J… --yes'],
    async run(context) {
      const id = context.positionals[0] as string;
      if (context.values.yes !== true) throw new CliUsageError(`deleting tenant ${id} destroys all its data and cannot be undone; add --yes to confirm`, 'tenants rm');
      await context.client().tenants.delete(id, { signal: context.signal });
      context.io.stderr.write(`deleted tenant ${id}\n`);
      return 0;
    },
  },
];
