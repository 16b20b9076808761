import type { CommandDefinition } from '../command.ts';

/**
 * `aiaas train` (src/cli/train-command.ts) parses its own arguments. It loads the training engine,
 * so it is imported only when used: the other commands start without it.
 */
export const trainCommand: CommandDefinition = {
  path: ['train'],
  summary: 'train a model spec on this machine, without a server (see aiaas train --help)',
  usage: '--spec SPEC.json --data FILE … --out DIR',
  async run(context) {
    const { runTrainCommand } = await import('../train-command.ts');
    return await runTrainCommand([...context.positionals], context.io);
  },
};
