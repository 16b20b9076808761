/**
 * ONNX Runtime's error texts carry the server's internals: its build paths
 * (`/onnxruntime_src/onnxruntime/core/...:191`), C++ signatures, and absolute paths of the host
 * (`resolved path: "/srv/aiaas/..."`). Clients get the reason without those; the full text stays
 * on the error's `cause`, which the HTTP layer logs.
 */

const sourceLocation = /\S*\.(?:cc|cpp|cxx|c|h|hpp|hxx|inc):\d+\s*/g;
/** A path that means something only on this host: absolute, home-relative, or a Windows drive or share. */
const hostPath = /(^|[\s"'(=:,[{])(?:\/|~\/|[A-Za-z]:\\|\\\\)[^\s"',;)\]}]*/g;
const maxLength = 400;

/** Index just past a C++ signature (`ns::Type::fn(args) const`) starting at `start`, or `start` if none. */
function skipSignature(text: string, start: number): number {
  const name = /^[A-Za-z_~][\w:~<>,*& ]*?\(/.exec(text.slice(start));
  if (name === null || !name[0].includes('::')) return start;
  let depth = 0;
  let index = start + name[0].length - 1;
  for (; index < text.length; index++) {
    const char = text[index];
    if (char === '(') depth++;
    else if (char === ')' && --depth === 0) break;
  }
  if (depth !== 0) return start;
  index++;
  const qualifier = /^\s*(?:const\b)?\s*/.exec(text.slice(index));
  return index + (qualifier?.[0].length ?? 0);
}

/** The message of an ONNX Runtime error, fit for a client: no source locations, signatures or host paths. */
export function cleanRuntimeMessage(raw: string): string {
  let text = '';
  let last = 0;
  for (const match of raw.matchAll(sourceLocation)) {
    text += raw.slice(last, match.index);
    last = skipSignature(raw, match.index + match[0].length);
  }
  text += raw.slice(last);
  text = text.replace(hostPath, '$1<path>').replace(/\s+/g, ' ').trim();
  return text.length > maxLength ? `${text.slice(0, maxLength)}…` : text;
}

/** The message of anything thrown, cleaned. */
export function cleanRuntimeError(error: unknown): string {
  return cleanRuntimeMessage(error instanceof Error ? error.message : String(error));
}
