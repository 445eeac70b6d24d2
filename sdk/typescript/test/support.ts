// What the SDK tests share: a real `promptops serve` (test/server.mjs, also used by bench/sdk.mjs), set-up calls to
// its API, a fake OpenAI-compatible server. Only loopback traffic.
import { createServer as createHttpServer, type IncomingMessage, type Server } from "node:http";
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
