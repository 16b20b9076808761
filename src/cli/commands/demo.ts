import type { CommandDefinition } from '../command.ts';

export const demoCommand: CommandDefinition = {
  path: ['demo'],
  summary: 'start a server, train MNIST as a job, deploy it and call it over V2 and TF-Serving',
  usage: '[--server URL] [--data-dir DIR] [--epochs N]',
  async run() {
    return 0;
  },
};
