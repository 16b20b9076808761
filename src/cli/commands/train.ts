import { CliFailure, type CommandDefinition } from '../command.ts';

/**
 * `aiaas train` is written elsewhere (src/cli/train-command.ts) and parses its own arguments;
 * it is imported only when used, so the other commands work even if that module is absent.
 */
export const trainCommand: CommandDefinition = {
  path: ['train'],
  summary: 'train a model spec on this machine, without a server (see aiaas train --help)',
  usage: '--spec SPEC.json --data FILE … --out DIR',
  async run(context) {
    let module: { runTrainCommand(argv: string[], io: typeof context.io): Promise<number> };
    try {
      module = await import('../train-command.ts');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') throw new CliFailure('NOT_AVAILABLE', 'aiaas train is not part of this build');
      throw error;
    }
    return await module.runTrainCommand([...context.positionals], context.io);
  },
};
