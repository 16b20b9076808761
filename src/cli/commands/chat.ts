/**
 * `aiaas chat NAME[@ALIAS]`: an interactive chat in the terminal over `/v1/chat/completions` with
 * `stream: true`. The answer is printed as it is generated; the conversation is kept and sent with
 * every turn. Ctrl-C while an answer streams stops that answer (the request is aborted, so the
 * server frees the sequence); Ctrl-C at the prompt, or Ctrl-D, exits.
 */
import { createInterface } from 'node:readline';
import type { ChatCompletionRequest, ChatMessage } from '../../sdk/types.ts';
import { AiaasApiError } from '../../sdk/errors.ts';
import { CliFailure, CliUsageError, integerOption, stringOption, type CommandDefinition } from '../command.ts';

const modelPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(@[A-Za-z0-9][A-Za-z0-9._-]{0,127})?$/;

function numberOption(values: Readonly<Record<string, string | boolean | undefined>>, name: string, minimum: number, maximum: number): number | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !(value >= minimum && value <= maximum)) throw new CliUsageError(`--${name} must be a number from ${minimum} to ${maximum}, got "${text}"`, 'chat');
  return value;
}

export const chatCommand: CommandDefinition = {
  path: ['chat'],
  summary: 'chat with a language model in the terminal (answers stream; Ctrl-C stops one, Ctrl-D exits)',
  usage: 'NAME[@ALIAS] [--system TEXT] [--max-tokens N] [--temperature T]',
  description:
    'Reads one message per line and streams the answer over /v1/chat/completions; the whole conversation is sent\n' +
    'with each message. Ctrl-C while an answer streams stops it (what was shown stays in the conversation);\n' +
    'Ctrl-C at the prompt or Ctrl-D (end of input) exits. "/reset" starts the conversation over.',
  positionals: ['MODEL'],
  options: {
    system: { type: 'string', valueName: 'TEXT', description: 'system message that opens the conversation' },
    'max-tokens': { type: 'string', valueName: 'N', description: "most tokens per answer (the model's default when omitted)" },
    temperature: { type: 'string', valueName: 'T', description: 'sampling temperature, 0 to 2' },
  },
  server: true,
  examples: ['aiaas chat tinyllama', 'aiaas chat tinyllama@production --system "Answer in one sentence."'],
  async run(context) {
    const model = context.positionals[0] as string;
    if (!modelPattern.test(model)) throw new CliUsageError(`MODEL must be NAME or NAME@ALIAS, got "${model}"`, 'chat');
    const maxTokens = integerOption(context.values, 'max-tokens', 'chat', 1);
    const temperature = numberOption(context.values, 'temperature', 0, 2);
    const system = stringOption(context.values, 'system');
    const input = context.io.stdin;
    if (input === undefined) throw new CliFailure('NO_INPUT', 'chat needs an input stream to read messages from');
    const client = context.client();
    const { stdout, stderr } = context.io;
    const opening: ChatMessage[] = system === undefined ? [] : [{ role: 'system', content: system }];
    const history: ChatMessage[] = [...opening];
    const interactive = input.isTTY === true;
    const lines = createInterface({ input, ...(interactive ? { output: stderr, terminal: true, prompt: '> ' } : { terminal: false }) });
    const prompt = () => {
      if (interactive) lines.prompt();
    };

    let answering: AbortController | undefined;
    let exiting = false;
    const exit = () => {
      exiting = true;
      answering?.abort();
      lines.close();
    };
    // Ctrl-C delivered as a signal (input not a terminal): stop the answer, or let the binary end the command.
    const onInterrupt = (event: Event) => {
      if (answering === undefined) return;
      event.preventDefault();
      answering.abort();
    };
    // On a terminal, readline reads Ctrl-C as a key and reports it here instead.
    lines.on('SIGINT', () => (answering === undefined ? exit() : answering.abort()));
    context.interrupts?.addEventListener('interrupt', onInterrupt);
    context.signal?.addEventListener('abort', exit);
    if (interactive) stderr.write(`chatting with ${model}; Ctrl-C stops an answer, Ctrl-D exits\n`);
    try {
      prompt();
      for await (const line of lines) {
        if (exiting) break;
        const text = line.trim();
        if (text === '') {
          prompt();
          continue;
        }
        if (text === '/reset') {
          history.splice(0, history.length, ...opening);
          stderr.write('(conversation cleared)\n');
          prompt();
          continue;
        }
        history.push({ role: 'user', content: line });
        const request: ChatCompletionRequest = {
          model,
          messages: [...history],
          ...(maxTokens === undefined ? {} : { max_tokens: maxTokens }),
          ...(temperature === undefined ? {} : { temperature }),
        };
        const controller = new AbortController();
        answering = controller;
        let answer = '';
        try {
          for await (const chunk of client.chatCompletionStream(request, { signal: controller.signal })) {
            const delta = chunk.choices[0]?.delta.content;
            if (typeof delta === 'string' && delta !== '') {
              stdout.write(delta);
              answer += delta;
            }
          }
          stdout.write('\n');
        } catch (error) {
          if (!controller.signal.aborted) {
            if (answer !== '') stdout.write('\n');
            const message = AiaasApiError.isInstance(error) ? `${error.code}: ${error.message}` : (error as Error).message;
            stderr.write(`error: ${message}\n`);
            // A failed turn leaves no trace, so the next message is not answered against it.
            history.pop();
            answer = '';
            if (AiaasApiError.isInstance(error) && (error.status === 401 || error.status === 403 || error.status === 404)) throw error;
            prompt();
            continue;
          }
          stdout.write('\n');
          if (!exiting) stderr.write('(stopped)\n');
        } finally {
          answering = undefined;
        }
        if (answer === '') history.pop();
        else history.push({ role: 'assistant', content: answer });
        if (exiting) break;
        prompt();
      }
    } finally {
      context.interrupts?.removeEventListener('interrupt', onInterrupt);
      context.signal?.removeEventListener('abort', exit);
      lines.close();
    }
    if (interactive) stderr.write('\n');
    return 0;
  },
};
