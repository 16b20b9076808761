import { describe, expect, it } from 'vitest';
import { DocMarkerError, parseDocExamples, withExpectedStatuses } from './doc-examples.ts';

describe('parseDocExamples', () => {
  it('takes sh, bash and console blocks in order, console commands only, and the skip reason', () => {
    const markdown = [
      '# Title',
      '```sh',
      'aiaas models ls',
      '```',
      '```',
      'aiaas serve [--port PORT]',
      '```',
      '```json',
      '{"a": 1}',
      '```',
      '<!-- docs-test: skip — needs a GGUF model from the internet -->',
      '',
      '```bash',
      'aiaas models pull x hf://a/b/c.gguf',
      '```',
      '```console',
      '$ aiaas models verify m@1 \\',
      '    --file model.onnx',
      'signature: valid',
      '$ echo done',
      'done',
      '```',
    ].join('\n');
    const examples = parseDocExamples('doc.md', markdown);
    expect(examples.map((example) => [example.line, example.language, example.script, example.skipReason])).toEqual([
      [2, 'sh', 'aiaas models ls', undefined],
      [13, 'bash', 'aiaas models pull x hf://a/b/c.gguf', 'needs a GGUF model from the internet'],
      [16, 'console', 'aiaas models verify m@1 \\\n    --file model.onnx\necho done', undefined],
    ]);
  });

  it('forgets a marker that text separates from the block', () => {
    const examples = parseDocExamples('doc.md', '<!-- docs-test: skip — reason -->\nSome text.\n```sh\nls\n```\n');
    expect(examples[0]!.skipReason).toBeUndefined();
  });

  it('refuses a skip without a reason, an unknown marker and a marker on a block that never runs', () => {
    expect(() => parseDocExamples('doc.md', '<!-- docs-test: skip -->\n```sh\nls\n```\n')).toThrow(DocMarkerError);
    expect(() => parseDocExamples('doc.md', '<!-- docs-test: maybe -->\n```sh\nls\n```\n')).toThrow(/doc.md:1: unknown docs-test marker/);
    expect(() => parseDocExamples('doc.md', '<!-- docs-test: skip — x -->\n```json\n{}\n```\n')).toThrow(/never run/);
  });
});

describe('withExpectedStatuses', () => {
  it('puts the expected status in front of the command whose last line names it', () => {
    const script = ['curl -X PATCH $URL -d x', 'curl $URL/files/model.onnx \\', '  -H "a: b"   # → 403', '# {"error": …}'].join('\n');
    expect(withExpectedStatuses(script).split('\n')).toEqual(['curl -X PATCH $URL -d x', 'DOCS_TEST_EXPECT_STATUS=403 curl $URL/files/model.onnx \\', '  -H "a: b"   # → 403', '# {"error": …}']);
  });
});
