import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** One open Server-Sent Events response, as the route that feeds it sees it. */
export interface EventStream {
  /** True once the client went away or the server started closing. */
  readonly closed: boolean;
  send(id: number, event: string, dataText: string): void;
  /** Ends the current `idle()` early (something the stream reports changed). */
  wake(): void;
  /** Waits for `wake()` or the poll interval, then sends a keep-alive; true when the interval ran out. */
  idle(): Promise<boolean>;
}

export type StartEventStream = (request: FastifyRequest, reply: FastifyReply, topic: string, feed: (stream: EventStream) => Promise<void>) => Promise<void>;

/**
 * Serves the event streams of one route plugin. Open streams would hold app.close() forever,
 * so they end when the server starts closing.
 */
export function eventStreams(app: FastifyInstance, pollMs: number): StartEventStream {
  const openStreams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of openStreams) end();
  });

  return async (request, reply, topic, feed) => {
    reply.hijack();
    const response = reply.raw;
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    response.write(`: aiaas ${topic} events\n\n`);
    let closed = false;
    let wakeUp: (() => void) | undefined;
    const end = () => {
      closed = true;
      wakeUp?.();
    };
    openStreams.add(end);
    // The response's close event fires when the client goes away (or the stream ends).
    response.on('close', end);
    const stream: EventStream = {
      get closed() {
        return closed;
      },
      send(id, event, dataText) {
        response.write(`id: ${id}\nevent: ${event}\ndata: ${dataText}\n\n`);
      },
      wake() {
        wakeUp?.();
      },
      async idle() {
        const timedOut = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(true), pollMs);
          wakeUp = () => {
            clearTimeout(timer);
            resolve(false);
          };
        });
        wakeUp = undefined;
        if (!closed) response.write(': keep-alive\n\n');
        return timedOut;
      },
    };
    try {
      await feed(stream);
    } catch (error) {
      request.log.error({ err: error }, `${topic} event stream failed`);
    } finally {
      openStreams.delete(end);
      if (!response.writableEnded) response.end();
    }
  };
}
