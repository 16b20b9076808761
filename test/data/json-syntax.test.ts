import { describe, expect, it } from 'vitest';
import { describeJsonSyntaxError, findJsonSyntaxProblem } from '../../src/data/json-syntax.ts';

function problemIn(text: string) {
  let parserError: unknown;
  try {
    JSON.parse(text);
  } catch (error) {
    parserError = error;
  }
  expect(parserError, 'the sample must be invalid JSON').toBeInstanceOf(SyntaxError);
  return findJsonSyntaxProblem(text);
}

describe('findJsonSyntaxProblem', () => {
  it('finds nothing in valid JSON, whatever its shape', () => {
    for (const text of ['{}', '[]', ' 1 ', '-0.5e+3', '"a\\u00e9\\n"', '{"a":[1,{"b":null}],"c":true,"d":false}\n']) {
      expect(JSON.parse(text)).toBeDefined();
      expect(findJsonSyntaxProblem(text)).toBeUndefined();
    }
  });

  it('gives the line and column of a trailing comma in an object', () => {
    expect(problemIn('{\n  "a": 1,\n}')).toEqual({ line: 3, column: 1, reason: 'trailing comma before }' });
  });

  it('gives the place of an unquoted value, where V8 gives no position at all', () => {
    expect(problemIn('{\n  "layers": [\n    {"type": dense}\n  ]\n}')).toEqual({ line: 3, column: 14, reason: "unexpected 'd'" });
  });

  it('reports a missing comma, an unterminated string, a truncated text and text after the value', () => {
    expect(problemIn('[1 2]')).toMatchObject({ line: 1, column: 4, reason: "expected ',' or ']' after an array element, found '2'" });
    expect(problemIn('{"a": "b')).toMatchObject({ line: 1, column: 9, reason: 'unterminated string' });
    expect(problemIn('{"a":')).toMatchObject({ line: 1, column: 6, reason: 'unexpected end of the text (a value is missing)' });
    expect(problemIn('{}\n{}')).toMatchObject({ line: 2, column: 1 });
    expect(problemIn("{'a': 1}")).toMatchObject({ line: 1, column: 2 });
    expect(problemIn('\ufeff{}')!.reason).toContain('BOM');
  });

  it('describes the problem for a message, falling back to the parser text for valid JSON', () => {
    expect(describeJsonSyntaxError('[1,]', new SyntaxError('x'))).toBe('line 1, column 4: trailing comma before ]');
    expect(describeJsonSyntaxError('{}', new SyntaxError('forbidden prototype property'))).toBe('forbidden prototype property');
  });
});
