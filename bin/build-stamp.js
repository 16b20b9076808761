// Whether a checkout's compiled dist/ is current: at least as new as every file under src/. Shared by
// bin/aiaas.js (which runs dist/ only then, and otherwise compiles src/ with tsx on the fly) and the
// benchmarks (which refuse to measure the slower tsx path by accident). Plain JavaScript: bin/ runs
// before anything is compiled.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Why dist/ under `root` is not current: the missing stamp, or the first source file newer than it;
 * undefined when it is current.
 */
export function staleBuildReason(root) {
  const stamp = join(root, 'dist/.build-stamp');
  if (!existsSync(stamp)) return `${root}: no build (dist/.build-stamp)`;
  const built = statSync(stamp).mtimeMs;
  for (const entry of readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath ?? entry.path, entry.name);
    if (entry.isFile() && statSync(path).mtimeMs > built) return `${path} is newer than the build in ${join(root, 'dist')}`;
  }
  return undefined;
}
