// Child side of validate-gguf-in-child.ts. Plain JavaScript started with bare `node`: from the
// compiled tree (dist/) it imports the compiled reader beside it; from the sources the parent
// starts it with `--import tsx` and it imports the TypeScript. Reads the GGUF file named by argv[2]
// and writes one JSON line: {"ok":true,"signature":{...},"chatTemplate":...,"sha256":"<hex>"} or
// {"ok":false,"error":"..."}. The file's SHA-256 is computed here too, off the server's main thread.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('./gguf-signature.js', import.meta.url);
const source = new URL('./gguf-signature.ts', import.meta.url);
const path = process.argv[2];
let message;
try {
  const { describeGgufFile } = await import(existsSync(fileURLToPath(compiled)) ? compiled.href : source.href);
  const description = await describeGgufFile(path);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  message = { ok: true, signature: description.signature, chatTemplate: description.chatTemplate, sha256: hash.digest('hex') };
} catch (error) {
  message = { ok: false, error: error instanceof Error ? error.message : String(error) };
}
process.stdout.write(`${JSON.stringify(message)}\n`, () => process.exit(0));
