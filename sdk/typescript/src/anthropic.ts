// `wrapAnthropic(client, po)`: the official `@anthropic-ai/sdk` client, recording its `messages.create` calls as runs
// (whole answers and streams, `messages.stream()` and `messages.parse()` included), attributed to a registry prompt's
// version when the call names one (`promptopsPrompt: prompt`). The client itself is not changed: the wrapper is a
// proxy over it. What is recorded mirrors the Python SDK's `wrap_anthropic`.
import type Anthropic from "@anthropic-ai/sdk";
import type { APIPromise, ExtractParsedContentFromParams, ParsedMessage } from "@anthropic-ai/sdk";
import type { Stream } from "@anthropic-ai/sdk/core/streaming";
import type { MessageStream } from "@anthropic-ai/sdk/lib/MessageStream";
import type {
  Message,
  MessageCreateParamsBase,
  MessageCreateParamsNonStreaming,
  MessageCreateParamsStreaming,
  MessageStreamParams,
  RawMessageStreamEvent,
} from "@anthropic-ai/sdk/resources/messages/messages";
import type { PromptOps } from "./client.js";
import type { Prompt } from "./prompt.js";
import type { RunRecord } from "./tracing.js";
import { derive, errorFields, now, observeStream, overriding, type AnyFn, type PromptOpsCallFields, type Thenable } from "./wrapping.js";

export type { PromptOpsCallFields } from "./wrapping.js";

type RequestOptions = Parameters<Anthropic["messages"]["create"]>[1];

export interface WrappedMessages {
  create(body: MessageCreateParamsNonStreaming & PromptOpsCallFields, options?: RequestOptions): APIPromise<Message>;
  create(body: MessageCreateParamsStreaming & PromptOpsCallFields, options?: RequestOptions): APIPromise<Stream<RawMessageStreamEvent>>;
  create(
    body: MessageCreateParamsBase & PromptOpsCallFields,
    options?: RequestOptions,
  ): APIPromise<Stream<RawMessageStreamEvent> | Message>;
  stream<Params extends MessageStreamParams>(
    body: Params & PromptOpsCallFields,
    options?: RequestOptions,
  ): MessageStream<ExtractParsedContentFromParams<Params>>;
  parse<Params extends MessageCreateParamsNonStreaming>(
    body: Params & PromptOpsCallFields,
    options?: RequestOptions,
  ): APIPromise<ParsedMessage<ExtractParsedContentFromParams<Params>>>;
}

export type WrappedAnthropic<C extends Anthropic> = Omit<C, "messages"> & {
  messages: Omit<C["messages"], "create" | "stream" | "parse"> & WrappedMessages;
};

export interface WrapAnthropicOptions {
  /** Record only the calls that pass `promptopsPrompt`, as `wrapOpenAI` does. Default `false`: every call is recorded
   * (like the Python SDK's `wrap_anthropic`), and attributed to a prompt version when it names one. */
  onlyWithPrompt?: boolean;
}

/** Request fields that are not the run's `params`: its model and input, and what is not a setting of the model (the
 * SDK sends `user_profile_id` and `workspace_id` as headers). */
const NOT_PARAMS = new Set(["model", "messages", "system", "stream", "tools", "tool_choice", "timeout", "user_profile_id", "workspace_id"]);

interface ToolUse {
  id: string | null;
  name: string | null;
  input: unknown;
  /** The streamed `input_json_delta` pieces, joined. */
  json: string;
}

/** Records one call: the request's fields now, the answer's (whole, or event by event) or the error's when they come. */
class MessageRecorder {
  readonly #start = now();
  readonly #createdAt = new Date().toISOString();
  #done = false;
  #model: string | undefined;
  #text = "";
  #sawText = false;
  readonly #tools = new Map<number, ToolUse>();
  #finishReason: string | null = null;
  #inputTokens = 0;
  #outputTokens = 0;
  #ttft: number | null = null;

  constructor(
    private readonly po: PromptOps,
    private readonly prompt: Prompt | null,
    private readonly body: Record<string, unknown>,
    private readonly traceId: string | undefined,
  ) {}

  /** A whole answer (`messages.create` without `stream`). */
  message(answer: Message): void {
    this.#model = answer.model || undefined;
    (answer.content ?? []).forEach((block, index) => {
      if (block.type === "text") {
        this.#text += block.text ?? "";
        this.#sawText = true;
      } else if (block.type === "tool_use") {
        this.#tools.set(index, { id: block.id ?? null, name: block.name ?? null, input: block.input ?? {}, json: "" });
      }
    });
    this.#finishReason = answer.stop_reason ?? null;
    this.#inputTokens = answer.usage?.input_tokens ?? 0;
    this.#outputTokens = answer.usage?.output_tokens ?? 0;
    this.end();
  }

  /** One event of a streamed answer (the wire format's `message_start`, `content_block_delta`, ...). */
  event(event: RawMessageStreamEvent): void {
    switch (event.type) {
      case "message_start":
        this.#model = event.message?.model || this.#model;
        this.#inputTokens = event.message?.usage?.input_tokens ?? 0;
        this.#outputTokens = event.message?.usage?.output_tokens ?? 0;
        break;
      case "content_block_start": {
        const block = event.content_block;
        if (block.type === "text") {
          this.#text += block.text ?? "";
          this.#sawText = true;
        } else if (block.type === "tool_use") {
          this.#tools.set(event.index, { id: block.id ?? null, name: block.name ?? null, input: block.input ?? {}, json: "" });
        }
        break;
      }
      case "content_block_delta": {
        // The first piece of the answer (text, tool input, thinking) is the first token.
        this.#ttft ??= now() - this.#start;
        const delta = event.delta;
        if (delta.type === "text_delta") {
          this.#text += delta.text ?? "";
          this.#sawText = true;
        } else if (delta.type === "input_json_delta") {
          const tool = this.#tools.get(event.index);
          if (tool) tool.json += delta.partial_json ?? "";
        }
        break;
      }
      case "message_delta":
        this.#finishReason = event.delta?.stop_reason ?? this.#finishReason;
        // `usage` here is cumulative: the final counts.
        this.#outputTokens = event.usage?.output_tokens ?? this.#outputTokens;
        this.#inputTokens = event.usage?.input_tokens ?? this.#inputTokens;
        break;
      default:
        break;
    }
  }

  /** The end of the call: the whole answer arrived, the stream ended (or the caller stopped reading it), or `error`. */
  end(error?: unknown): void {
    if (this.#done) return;
    this.#done = true;
    const toolCalls = [...this.#tools.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, tool]) => ({ id: tool.id, name: tool.name, input: tool.json ? parsedOr(tool.json) : tool.input }));
    const run: RunRecord = {
      ...this.#base(),
      // No text block: a tool-use answer (or a failed call) has no output; an empty answer has "".
      output: this.#sawText ? this.#text : toolCalls.length || error !== undefined ? null : "",
      toolCalls: toolCalls.length ? toolCalls : null,
      finishReason: this.#finishReason?.slice(0, 40) ?? null,
      inputTokens: this.#inputTokens,
      outputTokens: this.#outputTokens,
      ttftMs: this.#ttft,
      ...(error === undefined ? {} : errorFields(error)),
    };
    this.po.record(run, this.prompt);
  }

  #base(): RunRecord {
    const { model, messages, system } = this.body;
    const input = Array.isArray(messages) ? [...(messages as unknown[])] : [];
    if (system !== undefined && system !== null && system !== "") input.unshift({ role: "system", content: system });
    const params: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(this.body)) {
      if (NOT_PARAMS.has(key)) continue;
      if (["string", "number", "boolean"].includes(typeof value)) params[key] = value;
    }
    return {
      provider: "anthropic",
      model: String(this.#model ?? model ?? this.prompt?.modelConfig.model ?? "unknown").slice(0, 200),
      params,
      input: { messages: input },
      status: "ok",
      traceId: this.traceId?.slice(0, 64) ?? null,
      createdAt: this.#createdAt,
      latencyMs: now() - this.#start,
    };
  }
}

/** A tool's streamed input: the JSON object it spells, or the text itself when it is not valid JSON (cut short). */
function parsedOr(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return json;
  }
}

/**
 * A view of `client` whose `messages.create` records each call through `po`: the request's system prompt and messages,
 * its scalar parameters (`max_tokens`, `temperature`, ...), the model, the answer's text and `tool_use` blocks, the
 * stop reason, token usage, latency, and errors (`status: "error"`; the caller still gets the error). A call that
 * passes `promptopsPrompt` is recorded as a run of that prompt's version; `promptopsPrompt` and `promptopsTraceId`
 * are removed before the request is sent. Streams (`stream: true`, and `messages.stream()`, which goes through
 * `create`) pass through event by event and are recorded when they end, fail, or are left early, with the time to
 * the first content delta. The returned promise is the SDK's own `APIPromise` (`withResponse()` keeps working); the
 * run is queued when the answer arrives and never delays it.
 */
export function wrapAnthropic<C extends Anthropic>(client: C, po: PromptOps, options: WrapAnthropicOptions = {}): WrappedAnthropic<C> {
  const messages = client.messages;
  const create = messages.create as unknown as AnyFn;
  const wrappedCreate = function (this: unknown, body: Record<string, unknown>, ...rest: unknown[]) {
    const { promptopsPrompt, promptopsTraceId, ...forwarded } = body ?? {};
    if (options.onlyWithPrompt && !promptopsPrompt) return create.call(messages, forwarded, ...rest);
    const recorder = new MessageRecorder(
      po,
      (promptopsPrompt as Prompt | undefined) ?? null,
      forwarded,
      promptopsTraceId as string | undefined,
    );
    let call: Thenable;
    try {
      // The SDK refuses some requests before sending them (a non-streaming call too long to wait for): a failed run.
      call = create.call(messages, forwarded, ...rest) as Thenable;
    } catch (error) {
      recorder.end(error);
      throw error;
    }
    const onValue = (value: unknown) => {
      if (forwarded.stream) {
        return observeStream(value as Stream<RawMessageStreamEvent>, {
          event: (event: RawMessageStreamEvent) => recorder.event(event),
          end: (error) => recorder.end(error),
        });
      }
      recorder.message(value as Message);
      return value;
    };
    return derive(call, onValue, (error) => recorder.end(error));
  };
  // `stream()` and `parse()` are the SDK's helpers over `this.create`: called on the wrapped `messages`, they reach the
  // recording `create` (with the PromptOps fields still in their body, removed there).
  const helpers = messages as unknown as Record<string, AnyFn>;
  const overrides: Record<string, unknown> = { create: wrappedCreate };
  for (const name of ["stream", "parse"]) {
    const helper = helpers[name];
    if (typeof helper === "function") overrides[name] = (...args: unknown[]) => helper.apply(messagesProxy, args);
  }
  const messagesProxy = overriding(messages, overrides);
  return overriding(client, { messages: messagesProxy }) as unknown as WrappedAnthropic<C>;
}
