// `wrapOpenAI(client, po)`: the official `openai` client, recording every `chat.completions.create` call that
// names a registry prompt (`promptopsPrompt: prompt`) as a run, streams included. Other calls pass through
// untouched. The client itself is not changed: the wrapper is a proxy over it.
import type OpenAI from "openai";
import type { APIPromise } from "openai";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParamsBase,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
} from "openai/resources/chat/completions";
import type { Stream } from "openai/streaming";
import type { PromptOps } from "./client.js";
import type { Prompt } from "./prompt.js";
import type { RunRecord } from "./tracing.js";
import { derive, errorFields, now, observeStream, overriding, type AnyFn, type PromptOpsCallFields, type Thenable } from "./wrapping.js";

export type { PromptOpsCallFields } from "./wrapping.js";

type RequestOptions = Parameters<OpenAI["chat"]["completions"]["create"]>[1];

export interface WrappedCompletions {
  create(body: ChatCompletionCreateParamsNonStreaming & PromptOpsCallFields, options?: RequestOptions): APIPromise<ChatCompletion>;
  create(body: ChatCompletionCreateParamsStreaming & PromptOpsCallFields, options?: RequestOptions): APIPromise<Stream<ChatCompletionChunk>>;
  create(
    body: ChatCompletionCreateParamsBase & PromptOpsCallFields,
    options?: RequestOptions,
  ): APIPromise<Stream<ChatCompletionChunk> | ChatCompletion>;
}

export type WrappedOpenAI<C extends OpenAI> = Omit<C, "chat"> & {
  chat: Omit<C["chat"], "completions"> & { completions: Omit<C["chat"]["completions"], "create"> & WrappedCompletions };
};

interface ToolCallDelta {
  index?: number;
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}

/** Records one call: the request's fields now, the answer's (or the error's) when they arrive. */
class CallRecorder {
  readonly #start = now();
  readonly #createdAt = new Date().toISOString();
  #done = false;

  constructor(
    private readonly po: PromptOps,
    private readonly prompt: Prompt,
    private readonly body: Record<string, unknown>,
    private readonly traceId: string | undefined,
  ) {}

  #base(): RunRecord {
    const { model, messages, stream: _stream, stream_options: _options, ...params } = this.body;
    return {
      provider: "openai",
      model: String(model ?? this.prompt.modelConfig.model ?? "unknown"),
      params,
      input: { messages: Array.isArray(messages) ? messages : [] },
      status: "ok",
      traceId: this.traceId ?? null,
      createdAt: this.#createdAt,
      latencyMs: now() - this.#start,
    };
  }

  #record(fields: Partial<RunRecord>): void {
    if (this.#done) return;
    this.#done = true;
    this.po.record({ ...this.#base(), ...fields }, this.prompt);
  }

  completion(answer: ChatCompletion): void {
    const choice = answer.choices?.[0];
    this.#record({
      model: answer.model || undefined,
      output: choice?.message?.content ?? null,
      toolCalls: choice?.message?.tool_calls?.length ? (choice.message.tool_calls as unknown as Array<Record<string, unknown>>) : null,
      finishReason: choice?.finish_reason ?? null,
      inputTokens: answer.usage?.prompt_tokens ?? 0,
      outputTokens: answer.usage?.completion_tokens ?? 0,
    });
  }

  error(error: unknown): void {
    this.#record(errorFields(error));
  }

  /** Wraps a stream's iterator: chunks pass through as they come; the run is recorded when the stream ends. */
  stream(stream: Stream<ChatCompletionChunk>): Stream<ChatCompletionChunk> {
    const recorder = this;
    let text = "";
    let sawText = false;
    let model: string | undefined;
    let finishReason: string | null = null;
    let usage: ChatCompletionChunk["usage"] | undefined;
    let ttft: number | null = null;
    const tools = new Map<number, { id?: string; type?: string; function: { name: string; arguments: string } }>();
    const observe = (chunk: ChatCompletionChunk) => {
      if (ttft === null) ttft = now() - recorder.#start;
      model ??= chunk.model || undefined;
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices ?? []) {
        if (choice.index !== 0) continue;
        if (typeof choice.delta?.content === "string") {
          text += choice.delta.content;
          sawText = true;
        }
        for (const delta of (choice.delta?.tool_calls ?? []) as ToolCallDelta[]) {
          const slot = tools.get(delta.index ?? 0) ?? { function: { name: "", arguments: "" } };
          if (delta.id) slot.id = delta.id;
          if (delta.type) slot.type = delta.type;
          slot.function.name += delta.function?.name ?? "";
          slot.function.arguments += delta.function?.arguments ?? "";
          tools.set(delta.index ?? 0, slot);
        }
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
    };
    const finish = (error?: unknown) => {
      const fields: Partial<RunRecord> = {
        model,
        // A tool-call answer's stream opens with an empty text delta: that is no output.
        output: text !== "" || (sawText && tools.size === 0) ? text : null,
        toolCalls: tools.size ? [...tools.entries()].sort(([a], [b]) => a - b).map(([, call]) => call) : null,
        finishReason,
        inputTokens: usage?.prompt_tokens ?? 0,
        outputTokens: usage?.completion_tokens ?? 0,
        ttftMs: ttft,
      };
      recorder.#record(error === undefined ? fields : { ...fields, ...errorFields(error) });
    };
    return observeStream(stream, { event: observe, end: finish });
  }
}

/**
 * A view of `client` whose `chat.completions.create` records calls made with `promptopsPrompt` through `po`
 * (input messages, output, tool calls, tokens, latency, time to first token for streams, errors). The returned
 * promise is openai's own `APIPromise` (`withResponse()` keeps working); the run is queued when the answer (or the
 * end of the stream, or an error) arrives, and never delays it.
 */
export function wrapOpenAI<C extends OpenAI>(client: C, po: PromptOps): WrappedOpenAI<C> {
  const completions = client.chat.completions;
  const create = completions.create as unknown as AnyFn;
  const wrappedCreate = function (this: unknown, body: Record<string, unknown>, ...rest: unknown[]) {
    const { promptopsPrompt, promptopsTraceId, ...forwarded } = body ?? {};
    const call = create.call(completions, forwarded, ...rest) as Thenable;
    if (!promptopsPrompt) return call;
    const recorder = new CallRecorder(po, promptopsPrompt as Prompt, forwarded, promptopsTraceId as string | undefined);
    const onValue = (value: unknown) => {
      if (forwarded.stream) return recorder.stream(value as Stream<ChatCompletionChunk>);
      recorder.completion(value as ChatCompletion);
      return value;
    };
    // openai's APIPromise reads the body once per promise: derive ONE promise (keeping `withResponse()`), and record
    // errors from a side branch of it; the caller still gets the rejection.
    return derive(call, onValue, (error) => recorder.error(error));
  };
  const completionsProxy = overriding(completions, { create: wrappedCreate });
  const chatProxy = overriding(client.chat, { completions: completionsProxy });
  return overriding(client, { chat: chatProxy }) as unknown as WrappedOpenAI<C>;
}
