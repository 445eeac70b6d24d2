// Server-Sent Events over a POST (EventSource only does GET): the one place the UI calls fetch by hand. It sends
// what the typed client sends (session headers for CSRF and project), turns a refused request into an ApiError,
// and yields typed playground events as they arrive.
import { ApiError, sessionHeaders, type Problem, type Schemas } from "./client";

/** One event as the wire carries it: its name (default "message") and its data lines joined by "\n". */
export type RawEvent = { event: string; data: string };

/** Incremental parser for the text/event-stream format: feed it text in any chunks, get whole events back. */
export class SseParser {
  private buffer = "";
  private event = "";
  private data: string[] = [];

  /** The events completed by this chunk (a chunk may end in the middle of a line or of an event). */
  push(chunk: string): RawEvent[] {
    this.buffer += chunk;
    const done: RawEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A lone "\r" at the end may be the first half of "\r\n": wait for the next chunk.
      if (!match || (match[0] === "\r" && match.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) done.push(event);
    }
    return done;
  }

  private line(line: string): RawEvent | null {
    if (line === "") {
      const event = this.data.length ? { event: this.event || "message", data: this.data.join("\n") } : null;
      this.event = "";
      this.data = [];
      return event;
    }
    if (line.startsWith(":")) return null; // a comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    return null;
  }
}

/** The events of a byte stream, decoded as UTF-8 across chunk boundaries. */
export async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<RawEvent> {
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
    finished = true;
    // What is left is an event without its closing blank line: dropped, as the format says.
    yield* parser.push(decoder.decode());
  } finally {
    // Stopped early (the consumer broke off or threw): close the connection so the server stops generating.
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

type Result = Schemas["CallResultOut"];

/** What `start` says: what was rendered and which model each column index is. */
export type PlaygroundStart = Pick<Schemas["PlaygroundOut"], "kind" | "rendered" | "promptId" | "versionId"> & {
  requestId: string | null;
  models: Pick<Result, "index" | "provider" | "model">[];
};

export type PlaygroundEvent =
  | { event: "start"; data: PlaygroundStart }
  | { event: "delta"; data: { index: number; text: string } }
  | { event: "result"; data: Result }
  | { event: "error"; data: Problem }
  | { event: "end"; data: Record<string, never> };

const KNOWN = new Set(["start", "delta", "result", "error", "end"]);

/** POST /api/v1/playground/run with stream=true; yields its events until `end` (or until `signal` aborts). */
export async function* streamPlayground(
  body: Omit<Schemas["PlaygroundIn"], "stream">,
  signal?: AbortSignal,
): AsyncGenerator<PlaygroundEvent> {
  const response = await fetch("/api/v1/playground/run", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream", ...sessionHeaders("POST") },
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  });
  const requestId = response.headers.get("x-request-id");
  if (!response.ok) {
    const problem = (await response.json().catch(() => null)) as Partial<Problem> | null;
    throw new ApiError(response.status, problem, requestId);
  }
  if (!response.body) throw new ApiError(response.status, { detail: "The server sent no event stream" }, requestId);
  let ended = false;
  for await (const raw of readEvents(response.body)) {
    if (!KNOWN.has(raw.event)) continue;
    ended ||= raw.event === "end";
    yield { event: raw.event, data: JSON.parse(raw.data) } as PlaygroundEvent;
  }
  // A stream cut before its `end` (a proxy timeout, a dropped connection) is an error, not a quiet partial answer.
  if (!ended && !signal?.aborted) {
    throw new ApiError(502, { detail: "The event stream ended before the server finished; the answers may be partial" }, requestId);
  }
}
