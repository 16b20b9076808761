/**
 * Finds the shell examples of the docs: the fenced code blocks the docs self-test runs (docs/architecture.md,
 * "Docs that test themselves", states the rule).
 *
 * - A block runs when its info string is `sh`, `bash`, `shell` or `console`. Blocks without a language
 *   (usage synopses), `json`, `ts`, … are not commands.
 * - In a `console` block only lines starting with `$ ` are commands (with their `\` continuation lines); the
 *   rest is output. In the other languages the whole block is the script (`#` lines are comments).
 * - `<!-- docs-test: skip — REASON -->` on the line before the block (blank lines allowed) leaves it out;
 *   the reason is required and is reported.
 */
import { readFileSync } from 'node:fs';

export interface DocExample {
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly language: string;
  readonly script: string;
  /** Set when the block is marked skipped; the written reason. */
  readonly skipReason?: string;
}

const runnableLanguages = new Set(['sh', 'bash', 'shell', 'console']);
const markerPattern = /^<!--\s*docs-test:\s*(.*?)\s*-->$/;

export class DocMarkerError extends Error {}

/** The runnable blocks of one markdown text, in document order. */
export function parseDocExamples(file: string, markdown: string): DocExample[] {
  const lines = markdown.split('\n');
  const examples: DocExample[] = [];
  let pendingMarker: { text: string; line: number } | undefined;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    const marker = markerPattern.exec(line.trim());
    if (marker) {
      pendingMarker = { text: marker[1]!, line: index + 1 };
      continue;
    }
    const fence = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/.exec(line);
    if (!fence) {
      if (line.trim() !== '') pendingMarker = undefined;
      continue;
    }
    const [, indent, fenceMarks, language] = fence;
    const body: string[] = [];
    let end = index + 1;
    while (end < lines.length && !lines[end]!.trimStart().startsWith(fenceMarks!)) {
      body.push(lines[end]!.startsWith(indent!) ? lines[end]!.slice(indent!.length) : lines[end]!);
      end++;
    }
    const marked = pendingMarker;
    pendingMarker = undefined;
    const openingLine = index + 1;
    index = end;
    if (!runnableLanguages.has(language!)) {
      if (marked) throw new DocMarkerError(`${file}:${marked.line}: a docs-test marker before a ${language || 'plain'} block, which is never run`);
      continue;
    }
    let skipReason: string | undefined;
    if (marked) {
      const skip = /^skip\s*[—–:-]+\s*(\S.*)$/.exec(marked.text);
      if (!skip) throw new DocMarkerError(`${file}:${marked.line}: unknown docs-test marker '${marked.text}' (write 'docs-test: skip — REASON')`);
      skipReason = skip[1]!;
    }
    const script = language === 'console' ? consoleCommands(body) : body.join('\n');
    examples.push({ file, line: openingLine, language: language!, script, ...(skipReason === undefined ? {} : { skipReason }) });
  }
  return examples;
}

/** The commands of a console transcript: `$ ` lines and the lines that continue them. */
function consoleCommands(body: readonly string[]): string {
  const commands: string[] = [];
  let continuing = false;
  for (const line of body) {
    if (continuing || line.startsWith('$ ')) {
      commands.push(continuing ? line : line.slice(2));
      continuing = line.endsWith('\\');
    }
  }
  return commands.join('\n');
}

export function readDocExamples(root: string, file: string): DocExample[] {
  return parseDocExamples(file, readFileSync(`${root}/${file}`, 'utf8'));
}

/**
 * A command whose line ends in a comment `# → 403` (three digits after the arrow) shows an error answer:
 * it runs with `DOCS_TEST_EXPECT_STATUS=403` in front, so the test's curl checks that status instead of
 * failing on it. A `\`-continued command carries the comment on its last line.
 */
export function withExpectedStatuses(script: string): string {
  const lines = script.split('\n');
  let commandStart = 0;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    const continues = line.endsWith('\\');
    if (!continues) {
      const expected = /\s#\s*→\s*(\d{3})\b/.exec(line);
      if (expected) lines[commandStart] = `DOCS_TEST_EXPECT_STATUS=${expected[1]} ${lines[commandStart]!}`;
      commandStart = index + 1;
    }
  }
  return lines.join('\n');
}
