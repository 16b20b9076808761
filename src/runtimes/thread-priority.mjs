// Lowers the scheduling priority of the calling thread: a model instance or a parse worker, so that
// on a busy machine the server's main thread (which accepts, routes and answers every request) is not
// preempted by the compute it hands out. Plain JavaScript: the worker scripts that call it run under
// bare `node`. Linux only: there setpriority(PRIO_PROCESS, tid) applies to one thread, which
// `os.setPriority` passes through; elsewhere the same call would renice the whole process, so it is
// not made. Raising the niceness needs no privilege.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/**
 * Adds `nice` (0–19) to this thread's niceness. Returns the thread's id when applied, undefined when
 * not (0, another platform, or /proc unreadable): a priority hint that failed must not stop a model.
 */
export function lowerThreadPriority(nice) {
  if (process.platform !== 'linux' || !Number.isInteger(nice) || nice <= 0) return undefined;
  try {
    // "/proc/thread-self" links to "<pid>/task/<tid>".
    const threadId = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(threadId) || threadId <= 0) return undefined;
    // Relative to what the thread inherited: a server started under `nice -n 5` keeps its workers below it.
    setPriority(threadId, Math.min(19, getPriority(threadId) + nice));
    return threadId;
  } catch {
    return undefined;
  }
}
