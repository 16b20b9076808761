/**
 * A Server-Sent Events parser following the WHATWG "event stream interpretation" rules, fed with
 * arbitrary chunks: a line, a CRLF pair or a UTF-8 sequence may be split across chunk boundaries.
 */
export interface ServerSentEvent {
  /** `message` when the event had no `event:` field. */
  type: string;
  /** The `data:` lines joined with `\n`. */
  data: string;
  /** The last event id in effect when this event was dispatched (ids persist across events). */
  lastEventId: string | undefined;
}

export class ServerSentEventParser {
  private readonly decoder = new TextDecoder('utf-8');
  private pending = '';
  private skipLineFeed = false;
  private atStreamStart = true;
  private type = '';
  private dataLines: string[] = [];
  private hasData = false;
  /** The id to send as `Last-Event-ID` when reconnecting: set only once its event block has ended. */
  lastEventId: string | undefined;
  /** An `id:` seen in the block being read, committed at its blank line, so a half-received event never advances the resume point. */
  private idBuffer: string | undefined;
  /** Milliseconds requested by a `retry:` field, if any. */
  retryMilliseconds: number | undefined;

  constructor(lastEventId?: string) {
    this.lastEventId = lastEventId;
    this.idBuffer = lastEventId;
  }

  /** Feeds bytes or text; returns the events completed by this chunk, in order. */
  push(chunk: Uint8Array | string): ServerSentEvent[] {
    let text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    if (this.atStreamStart && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this.atStreamStart = false;
    }
    const events: ServerSentEvent[] = [];
    let start = 0;
    let index = 0;
    const buffer = this.pending + text;
    this.pending = '';
    if (this.skipLineFeed && buffer.startsWith('\n')) {
      start = 1;
      index = 1;
    }
    this.skipLineFeed = false;
    for (; index < buffer.length; index++) {
      const code = buffer.charCodeAt(index);
      if (code !== 0x0a && code !== 0x0d) continue;
      this.line(buffer.slice(start, index), events);
      if (code === 0x0d) {
        if (index + 1 < buffer.length) {
          if (buffer.charCodeAt(index + 1) === 0x0a) index++;
        } else {
          // The LF of a CRLF may arrive in the next chunk; it must not count as a second line end.
          this.skipLineFeed = true;
        }
      }
      start = index + 1;
    }
    this.pending = buffer.slice(start);
    return events;
  }

  /** The stream ended: an event without its blank line is discarded, as the standard says. */
  end(): void {
    this.pending = '';
    this.type = '';
    this.dataLines = [];
    this.hasData = false;
    this.skipLineFeed = false;
    this.idBuffer = this.lastEventId;
  }

  private line(line: string, events: ServerSentEvent[]): void {
    if (line === '') {
      this.lastEventId = this.idBuffer;
      if (this.hasData) {
        events.push({ type: this.type === '' ? 'message' : this.type, data: this.dataLines.join('\n'), lastEventId: this.lastEventId });
      }
      this.type = '';
      this.dataLines = [];
      this.hasData = false;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.type = value;
        break;
      case 'data':
        this.dataLines.push(value);
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\u0000')) this.idBuffer = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMilliseconds = Number(value);
        break;
      default:
        // Unknown fields are ignored by the standard so servers can extend the format.
        break;
    }
  }
}

/**
 * The events of a response body as they complete. The body's reader is released however the
 * iteration ends (the stream ended or failed, or the consumer stopped), so the socket is freed.
 */
export async function* readServerSentEvents(body: ReadableStream<Uint8Array>, parser: ServerSentEventParser): AsyncGenerator<ServerSentEvent, void, undefined> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield* parser.push(value);
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
