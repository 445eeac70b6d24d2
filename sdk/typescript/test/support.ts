// What the SDK tests share: a real `promptops serve` (test/server.mjs, also used by bench/sdk.mjs), set-up calls to
// its API, a fake OpenAI-compatible server and a fake Anthropic Messages API server. Only loopback traffic.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { PromptOps, type PromptOpsOptions } from "../src/index.js";
import { ADMIN_KEY, api, freePort, PACKAGE, ROOT, startServer } from "./server.mjs";

export { ADMIN_KEY, api, freePort, PACKAGE, ROOT, startServer };

export interface RunningServer {
  url: string;
  stop(): Promise<void>;
}

/** A client of `server` as the admin key (no exit hook: the test flushes itself). */
export function clientOf(server: RunningServer, extra: PromptOpsOptions = {}): PromptOps {
  return new PromptOps({ url: server.url, apiKey: ADMIN_KEY, flushOnExit: false, ...extra });
}

/** The runs stored for a trace id (newest first), through `GET /api/v1/runs`. */
export async function runsOf(base: string, query: Record<string, string>): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const qs: URLSearchParams = new URLSearchParams({ ...query, limit: "200", ...(cursor ? { cursor } : {}) });
    const page: { items: any[]; nextCursor: string | null } = await api(base, "GET", `/api/v1/runs?${qs}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

/** A name no other test (or earlier run on a shared database) uses. */
export function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

export async function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A `fetch` that holds every request until `open()` (to see what does and does not wait on the network). */
export function gatedFetch() {
  let release: () => void = () => {};
  let gate = new Promise<void>((resolve) => (release = resolve));
  const calls: string[] = [];
  const fetchImpl: typeof fetch = async (input, init) => {
    calls.push(`${init?.method ?? "GET"} ${String(input)}`);
    await gate;
    return fetch(input, init);
  };
  return {
    fetch: fetchImpl,
    calls,
    open: () => release(),
    close: () => {
      gate = new Promise<void>((resolve) => (release = resolve));
    },
  };
}

// --- a fake OpenAI-compatible server ---------------------------------------------------------------------------

export interface FakeOpenAI {
  url: string;
  /** The request bodies received, in order. */
  requests: any[];
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => (data += chunk));
    req.on("end", () => resolve(data));
    req.on("error", reject);
  });
}

/**
 * `POST /v1/chat/completions` in OpenAI's wire format: the answer is "Echo: <last user message>", word by word when
 * streamed (with a usage chunk when `stream_options.include_usage`); with `tools`, a call of the first tool; model
 * `broken` answers 500 with OpenAI's error body. Tokens: whitespace words.
 */
export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  const requests: any[] = [];
  const server: Server = createHttpServer(async (req, res) => {
    const body = JSON.parse((await readBody(req)) || "{}");
    requests.push(body);
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      res.writeHead(404, { "Content-Type": "application/json" });
      return res.end(JSON.stringify({ error: { message: "not found", type: "invalid_request_error" } }));
    }
    if (body.model === "broken") {
      res.writeHead(500, { "Content-Type": "application/json" });
      return res.end(JSON.stringify({ error: { message: "The upstream broke", type: "server_error", code: null } }));
    }
    const messages: Array<{ role: string; content: string }> = body.messages ?? [];
    const last = [...messages].reverse().find((m) => m.role === "user")?.content ?? "";
    const answer = `Echo: ${last}`;
    const words = (s: string) => s.split(/\s+/).filter(Boolean).length;
    const usage = {
      prompt_tokens: messages.reduce((n, m) => n + words(m.content), 0),
      completion_tokens: words(answer),
      total_tokens: 0,
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    const tool = body.tools?.[0]?.function?.name as string | undefined;
    const toolCall = tool ? { id: "call_1", type: "function", function: { name: tool, arguments: '{"city":"Paris"}' } } : null;
    const base = { id: "chatcmpl-fake", created: 1_700_000_000, model: body.model, system_fingerprint: null };
    if (!body.stream) {
      res.writeHead(200, { "Content-Type": "application/json" });
      return res.end(
        JSON.stringify({
          ...base,
          object: "chat.completion",
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: toolCall ? null : answer, tool_calls: toolCall ? [toolCall] : undefined, refusal: null },
              finish_reason: toolCall ? "tool_calls" : "stop",
              logprobs: null,
            },
          ],
          usage,
        }),
      );
    }
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    const send = (chunk: unknown) => res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    const chunk = (delta: unknown, finish: string | null = null) => ({
      ...base,
      object: "chat.completion.chunk",
      choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
    });
    send(chunk({ role: "assistant", content: "" }));
    if (toolCall) {
      send(chunk({ tool_calls: [{ index: 0, id: toolCall.id, type: "function", function: { name: tool, arguments: "" } }] }));
      send(chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }));
      send(chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }));
      send(chunk({}, "tool_calls"));
    } else {
      for (const piece of answer.match(/\S+\s*/g) ?? []) {
        send(chunk({ content: piece }));
        await new Promise((r) => setTimeout(r, 2));
      }
      send(chunk({}, "stop"));
    }
    if (body.stream_options?.include_usage) send({ ...base, object: "chat.completion.chunk", choices: [], usage });
    res.end("data: [DONE]\n\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// --- a fake Anthropic Messages API server -----------------------------------------------------------------------

export interface FakeAnthropic {
  url: string;
  /** The request bodies received, in order. */
  requests: any[];
  /** The request headers received, in order. */
  headers: Array<Record<string, string | string[] | undefined>>;
  close(): Promise<void>;
}

/** The text of a message's `content`: a string, or the joined `text` blocks of a list. */
function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .filter((block) => block?.type === "text")
    .map((block) => String(block.text ?? ""))
    .join(" ");
}

/**
 * `POST /v1/messages` in Anthropic's wire format (a JSON `message`, or the SSE events `message_start`,
 * `content_block_start`, `ping`, `content_block_delta`, `content_block_stop`, `message_delta`, `message_stop`).
 * It wants a key (`x-api-key`, or `Authorization: Bearer` as the 1.x SDK sends it) and `anthropic-version` (401 / 400
 * otherwise, with Anthropic's error body). The
 * answer is "Echo: <last user message>", word by word when streamed; with `tools`, a text block "Let me check."
 * and a `tool_use` block calling the first tool (streamed as `input_json_delta` pieces). Model `broken` answers 500
 * (`api_error`); model `overloaded` streams two words, then an `error` event (`overloaded_error`), as the API does
 * when it is overloaded mid-answer. Tokens: whitespace words (input: the system prompt and all messages).
 */
export async function startFakeAnthropic(): Promise<FakeAnthropic> {
  const requests: any[] = [];
  const headers: FakeAnthropic["headers"] = [];
  const fail = (res: ServerResponse, status: number, type: string, message: string) => {
    res.writeHead(status, { "Content-Type": "application/json", "request-id": "req_fake" });
    res.end(JSON.stringify({ type: "error", error: { type, message }, request_id: "req_fake" }));
  };
  const server: Server = createHttpServer(async (req, res) => {
    const raw = await readBody(req);
    const body = JSON.parse(raw || "{}");
    requests.push(body);
    headers.push({ ...req.headers });
    if (req.method !== "POST" || req.url !== "/v1/messages") return fail(res, 404, "not_found_error", "Not found");
    if (!req.headers["x-api-key"] && !/^Bearer \S/.test(req.headers.authorization ?? "")) {
      return fail(res, 401, "authentication_error", "x-api-key or Authorization header is required");
    }
    if (!req.headers["anthropic-version"]) return fail(res, 400, "invalid_request_error", "anthropic-version header is required");
    if (typeof body.model !== "string" || !Array.isArray(body.messages) || typeof body.max_tokens !== "number") {
      return fail(res, 400, "invalid_request_error", "model, messages and max_tokens are required");
    }
    if (body.model === "broken") return fail(res, 500, "api_error", "Internal server error: the upstream broke");
    const messages: Array<{ role: string; content: unknown }> = body.messages;
    const last = textOf([...messages].reverse().find((m) => m.role === "user")?.content);
    const answer = `Echo: ${last}`;
    const words = (s: string) => s.split(/\s+/).filter(Boolean).length;
    const system = typeof body.system === "string" ? body.system : textOf(body.system);
    const inputTokens = words(system) + messages.reduce((n, m) => n + words(textOf(m.content)), 0);
    const tool = body.tools?.[0]?.name as string | undefined;
    const preamble = "Let me check.";
    const toolInput = { city: "Paris" };
    const outputTokens = tool ? words(preamble) + 3 : words(answer);
    const message = {
      id: "msg_fake",
      type: "message",
      role: "assistant",
      model: body.model,
      content: tool
        ? [
            { type: "text", text: preamble },
            { type: "tool_use", id: "toolu_1", name: tool, input: toolInput },
          ]
        : [{ type: "text", text: answer }],
      stop_reason: tool ? "tool_use" : "end_turn",
      stop_sequence: null,
      usage: { input_tokens: inputTokens, output_tokens: outputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    };
    if (!body.stream) {
      res.writeHead(200, { "Content-Type": "application/json", "request-id": "req_fake" });
      return res.end(JSON.stringify(message));
    }
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "request-id": "req_fake" });
    const send = (event: string, data: Record<string, unknown>) => res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
    const pause = () => new Promise((r) => setTimeout(r, 2));
    send("message_start", {
      message: { ...message, content: [], stop_reason: null, usage: { ...message.usage, output_tokens: 1 } },
    });
    const text = tool ? preamble : answer;
    send("content_block_start", { index: 0, content_block: { type: "text", text: "" } });
    send("ping", {});
    const pieces = text.match(/\S+\s*/g) ?? [];
    for (const [i, piece] of pieces.entries()) {
      if (body.model === "overloaded" && i === 2) {
        res.end(`event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } })}\n\n`);
        return;
      }
      await pause();
      send("content_block_delta", { index: 0, delta: { type: "text_delta", text: piece } });
    }
    send("content_block_stop", { index: 0 });
    if (tool) {
      send("content_block_start", { index: 1, content_block: { type: "tool_use", id: "toolu_1", name: tool, input: {} } });
      for (const piece of ['{"city":', ' "Par', 'is"}']) {
        await pause();
        send("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: piece } });
      }
      send("content_block_stop", { index: 1 });
    }
    send("message_delta", { delta: { stop_reason: message.stop_reason, stop_sequence: null }, usage: { output_tokens: outputTokens } });
    send("message_stop", {});
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    headers,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
