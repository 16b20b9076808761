/**
 * Where a JSON text first breaks, as a line and column a person can find in an editor. V8's own
 * messages give a character offset at best (`… in JSON at position 1874`) and often no place at all
 * (`Unexpected token 'x', "…" is not valid JSON`), so this scanner walks the text itself. It runs only
 * after JSON.parse has failed, so its speed does not matter; it never builds values.
 */
export interface JsonSyntaxProblem {
  /** 1-based line. */
  readonly line: number;
  /** 1-based column, counted in UTF-16 code units like editors' "Col". */
  readonly column: number;
  readonly reason: string;
}

class JsonSyntaxStop {
  constructor(readonly offset: number, readonly reason: string) {}
}

/** The first syntax problem in `text`, or undefined when it is valid JSON. */
export function findJsonSyntaxProblem(text: string): JsonSyntaxProblem | undefined {
  let offset = 0;
  const fail = (reason: string): never => {
    throw new JsonSyntaxStop(offset, reason);
  };
  const describeHere = (): string => (offset >= text.length ? 'the end of the text' : `'${text[offset]}'`);
  const skipWhitespace = (): void => {
    while (offset < text.length && ' \t\n\r'.includes(text[offset]!)) offset += 1;
  };
  const expectLiteral = (word: string): void => {
    for (const character of word) {
      if (text[offset] !== character) fail(`unexpected ${describeHere()} (expected ${word})`);
      offset += 1;
    }
  };
  const scanString = (): void => {
    offset += 1; // the opening quote
    for (;;) {
      if (offset >= text.length) fail('unterminated string');
      const code = text.charCodeAt(offset);
      if (code === 0x22) {
        offset += 1;
        return;
      }
      if (code < 0x20) fail('control character inside a string (escape it, e.g. \\n)');
      if (code === 0x5c) {
        const escape = text[offset + 1];
        if (escape === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(offset + 2, offset + 6))) fail('bad \\u escape (needs four hex digits)');
          offset += 6;
        } else if (escape !== undefined && '"\\/bfnrt'.includes(escape)) offset += 2;
        else fail(`bad escape \\${escape ?? ''}`);
      } else offset += 1;
    }
  };
  const scanNumber = (): void => {
    const match = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(offset, offset + 400));
    if (match === null || match[0] === '' || match[0] === '-') fail(`unexpected ${describeHere()}`);
    offset += match![0].length;
  };
  const scanValue = (): void => {
    skipWhitespace();
    const character = text[offset];
    if (character === '{') {
      offset += 1;
      skipWhitespace();
      if (text[offset] === '}') {
        offset += 1;
        return;
      }
      for (;;) {
        skipWhitespace();
        if (text[offset] !== '"') fail(text[offset] === '}' ? 'trailing comma before }' : `expected a double-quoted property name, found ${describeHere()}`);
        scanString();
        skipWhitespace();
        if (text[offset] !== ':') fail(`expected ':' after the property name, found ${describeHere()}`);
        offset += 1;
        scanValue();
        skipWhitespace();
        if (text[offset] === ',') {
          offset += 1;
          continue;
        }
        if (text[offset] === '}') {
          offset += 1;
          return;
        }
        fail(`expected ',' or '}' after a property value, found ${describeHere()}`);
      }
    }
    if (character === '[') {
      offset += 1;
      skipWhitespace();
      if (text[offset] === ']') {
        offset += 1;
        return;
      }
      for (;;) {
        skipWhitespace();
        if (text[offset] === ']') fail('trailing comma before ]');
        scanValue();
        skipWhitespace();
        if (text[offset] === ',') {
          offset += 1;
          continue;
        }
        if (text[offset] === ']') {
          offset += 1;
          return;
        }
        fail(`expected ',' or ']' after an array element, found ${describeHere()}`);
      }
    }
    if (character === '"') return scanString();
    if (character === 't') return expectLiteral('true');
    if (character === 'f') return expectLiteral('false');
    if (character === 'n') return expectLiteral('null');
    if (character === '-' || (character !== undefined && character >= '0' && character <= '9')) return scanNumber();
    fail(offset >= text.length ? 'unexpected end of the text (a value is missing)' : `unexpected ${describeHere()}`);
  };
  try {
    if (text.charCodeAt(0) === 0xfeff) fail('byte-order mark (BOM) before the JSON value: save the file as UTF-8 without BOM');
    scanValue();
    skipWhitespace();
    if (offset < text.length) fail(`unexpected ${describeHere()} after the end of the JSON value`);
    return undefined;
  } catch (error) {
    if (!(error instanceof JsonSyntaxStop)) throw error;
    return { ...lineAndColumn(text, error.offset), reason: error.reason };
  }
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let index = 0; index < offset && index < text.length; index += 1) {
    if (text.charCodeAt(index) === 0x0a) {
      line += 1;
      lineStart = index + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** "line 3, column 5: expected …" for a text JSON.parse refused (falls back to the parser's message). */
export function describeJsonSyntaxError(text: string, parserError: unknown): string {
  const problem = findJsonSyntaxProblem(text);
  if (problem === undefined) return parserError instanceof Error ? parserError.message : String(parserError);
  return `line ${problem.line}, column ${problem.column}: ${problem.reason}`;
}
