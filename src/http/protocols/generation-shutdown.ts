/**
 * Ends language-model generations when the server shuts down. `app.close()` waits for every open
 * response, and a streamed chat (SSE, NDJSON) stays open as long as its generation runs: a client
 * holding one would hold the shutdown with it. Generations still running when the server closes get
 * a grace period to finish on their own, then are aborted: each stream then sends its last event
 * (finish reason `abort`) and ends, and the close completes.
 */
export class GenerationShutdown {
  readonly #controller = new AbortController();
  #open = 0;
  #idle: (() => void) | undefined;
  #closing = false;

  /** The server has begun to close: a stream ending now closes its connection (see beginStream). */
  get closing(): boolean {
    return this.#closing;
  }

  /** Aborted once the grace period is over. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Counts a generation as running until the returned function is called. */
  begin(): () => void {
    this.#open += 1;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.#open -= 1;
      if (this.#open === 0) this.#idle?.();
    };
  }

  get running(): number {
    return this.#open;
  }

  /** Waits up to `graceMs` for running generations to end, then aborts the rest. */
  async close(graceMs: number): Promise<void> {
    this.#closing = true;
    if (this.#open > 0 && graceMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
        timer = setTimeout(resolve, graceMs);
      });
      clearTimeout(timer);
      this.#idle = undefined;
    }
    this.#controller.abort(new Error('the server is shutting down'));
  }
}
