// wrapAnthropic with the official `@anthropic-ai/sdk` client against a fake Anthropic Messages API server (loopback,
// the real wire format: JSON and SSE events), recording into a real PromptOps server: JSON answers, `stream: true`,
// the `messages.stream()` helper, tool use, errors before and during a stream, early stops, calls without a prompt.
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PromptOps, type Prompt } from "../src/index.js";
import { wrapAnthropic } from "../src/anthropic.js";
import { ADMIN_KEY, api, runsOf, startFakeAnthropic, startServer, unique, type FakeAnthropic, type RunningServer } from "./support.js";

let server: RunningServer;
let fake: FakeAnthropic;
let po: PromptOps;
let prompt: Prompt;
const NAME = unique("sdk/claude");
const MODEL = "claude-haiku-4-5";

beforeAll(async () => {
  [server, fake] = await Promise.all([startServer(), startFakeAnthropic()]);
  await api(server.url, "POST", "/api/v1/prompts", {
    name: NAME,
    kind: "chat",
    messages: [
      { role: "system", content: "You are terse." },
      { role: "user", content: "{{ question }}" },
    ],
    variables: [{ name: "question" }],
    modelConfig: { provider: "anthropic", model: MODEL, params: { temperature: 0.2, max_tokens: 256 } },
    labels: ["production"],
  });
  po = new PromptOps({ url: server.url, apiKey: ADMIN_KEY, flushOnExit: false });
  prompt = await po.getPrompt(NAME, { label: "production" });
});

afterAll(async () => {
  await po?.shutdown();
  await Promise.all([server?.stop(), fake?.close()]);
});

function anthropic(options: Parameters<typeof wrapAnthropic>[2] = {}) {
  return wrapAnthropic(new Anthropic({ baseURL: fake.url, apiKey: "sk-ant-test", maxRetries: 0 }), po, options);
}

/** A registry chat prompt's messages as the Messages API takes them: the system text apart. */
async function claudeMessages(question: string) {
  const rendered = await prompt.render({ question });
  const all = rendered.messages ?? [];
  return {
    system: all.filter((m) => m.role === "system").map((m) => m.content).join("\n"),
    messages: all.filter((m) => m.role !== "system") as Anthropic.MessageParam[],
  };
}

const weather: Anthropic.Tool[] = [
  { name: "weather", description: "The weather in a city", input_schema: { type: "object", properties: { city: { type: "string" } } } },
];

describe("wrapAnthropic", () => {
  it("records a JSON call made with a registry prompt, and strips the PromptOps fields", async () => {
    const client = anthropic();
    const traceId = unique("t");
    const { system, messages } = await claudeMessages("What is 2 + 2?");
    const answer = await client.messages.create({
      model: MODEL,
      max_tokens: 256,
      service_tier: "auto",
      system,
      messages,
      metadata: { user_id: "u-1" },
      stop_sequences: ["END"],
      promptopsPrompt: prompt,
      promptopsTraceId: traceId,
    });
    expect(answer.content).toEqual([{ type: "text", text: "Echo: What is 2 + 2?" }]);
    const sent = fake.requests.at(-1);
    expect(sent).not.toHaveProperty("promptopsPrompt");
    expect(sent).not.toHaveProperty("promptopsTraceId");
    expect(sent).toMatchObject({ model: MODEL, max_tokens: 256, service_tier: "auto", system: "You are terse.", stop_sequences: ["END"] });
    const auth = fake.headers.at(-1) ?? {};
    expect(auth["x-api-key"] ?? auth.authorization).toMatch(/sk-ant-test$/);

    await po.flush();
    const runs = await runsOf(server.url, { traceId });
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      promptId: prompt.promptId,
      versionId: prompt.versionId,
      provider: "anthropic",
      model: MODEL,
      // Scalar settings only, as the Python SDK records them (not `metadata` or `stop_sequences`).
      params: { max_tokens: 256, service_tier: "auto" },
      input: {
        messages: [
          { role: "system", content: "You are terse." },
          { role: "user", content: "What is 2 + 2?" },
        ],
      },
      output: "Echo: What is 2 + 2?",
      toolCalls: null,
      finishReason: "end_turn",
      inputTokens: 8,
      outputTokens: 6,
      status: "ok",
      source: "sdk",
      ttftMs: null,
      errorClass: null,
    });
    expect(runs[0].latencyMs).toBeGreaterThan(0);
  });

  it("records a `stream: true` call when the stream ends, with the joined text, usage and time to first token", async () => {
    const client = anthropic();
    const traceId = unique("t");
    const stream = await client.messages.create({
      model: MODEL,
      max_tokens: 256,
      messages: [{ role: "user", content: [{ type: "text", text: "stream this please" }] }],
      stream: true,
      promptopsPrompt: prompt,
      promptopsTraceId: traceId,
    });
    const seen: string[] = [];
    let text = "";
    for await (const event of stream) {
      seen.push(event.type);
      if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text;
    }
    expect(text).toBe("Echo: stream this please");
    // Every event reaches the caller unchanged (the SDK itself drops `ping`).
    expect(seen[0]).toBe("message_start");
    expect(seen.slice(-2)).toEqual(["message_delta", "message_stop"]);
    expect(fake.requests.at(-1)).toMatchObject({ stream: true });
    expect(fake.requests.at(-1)).not.toHaveProperty("promptopsPrompt");

    await po.flush();
    const [run] = await runsOf(server.url, { traceId });
    expect(run).toMatchObject({
      output: text,
      finishReason: "end_turn",
      inputTokens: 3,
      outputTokens: 4,
      status: "ok",
      versionId: prompt.versionId,
      model: MODEL,
      params: { max_tokens: 256 },
      input: { messages: [{ role: "user", content: [{ type: "text", text: "stream this please" }] }] },
    });
    expect(run.ttftMs).toBeGreaterThan(0);
    expect(run.ttftMs).toBeLessThanOrEqual(run.latencyMs);
  });

  it("records the `messages.stream()` helper, whose events and final message still work", async () => {
    const client = anthropic();
    const traceId = unique("t");
    const deltas: string[] = [];
    const stream = client.messages
      .stream({
        model: MODEL,
        max_tokens: 64,
        system: [{ type: "text", text: "Be brief." }],
        messages: [{ role: "user", content: "helper stream" }],
        promptopsPrompt: prompt,
        promptopsTraceId: traceId,
      })
      .on("text", (delta) => deltas.push(delta));
    const final = await stream.finalMessage();
    expect(await stream.finalText()).toBe("Echo: helper stream");
    expect(deltas.join("")).toBe("Echo: helper stream");
    expect(final.usage.output_tokens).toBe(3);
    expect(fake.requests.at(-1)).toMatchObject({ stream: true, model: MODEL });
    expect(fake.requests.at(-1)).not.toHaveProperty("promptopsPrompt");
    expect(fake.requests.at(-1)).not.toHaveProperty("promptopsTraceId");

    await po.flush();
    const runs = await runsOf(server.url, { traceId });
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      versionId: prompt.versionId,
      output: "Echo: helper stream",
      finishReason: "end_turn",
      inputTokens: 4,
      outputTokens: 3,
      status: "ok",
      params: { max_tokens: 64 },
      input: { messages: [{ role: "system", content: [{ type: "text", text: "Be brief." }] }, { role: "user", content: "helper stream" }] },
    });
    expect(runs[0].ttftMs).toBeGreaterThan(0);
  });

  it("records tool use, JSON and streamed, with the text before it and the tool input as an object", async () => {
    const client = anthropic();
    const traceId = unique("t");
    const json = await client.messages.create({
      model: MODEL,
      max_tokens: 256,
      tools: weather,
      messages: [{ role: "user", content: "weather?" }],
      promptopsPrompt: prompt,
      promptopsTraceId: traceId,
    });
    expect(json.stop_reason).toBe("tool_use");
    const stream = await client.messages.create({
      model: MODEL,
      max_tokens: 256,
      tools: weather,
      tool_choice: { type: "auto" },
      messages: [{ role: "user", content: "weather?" }],
      stream: true,
      promptopsPrompt: prompt,
      promptopsTraceId: traceId,
    });
    for await (const _event of stream) {
      /* drain */
    }
    const helper = await client.messages
      .stream({ model: MODEL, max_tokens: 256, tools: weather, messages: [{ role: "user", content: "weather?" }], promptopsPrompt: prompt, promptopsTraceId: traceId })
      .finalMessage();
    expect(helper.content[1]).toMatchObject({ type: "tool_use", name: "weather", input: { city: "Paris" } });

    await po.flush();
    const runs = await runsOf(server.url, { traceId });
    expect(runs).toHaveLength(3);
    for (const run of runs) {
      expect(run).toMatchObject({ finishReason: "tool_use", output: "Let me check.", status: "ok", outputTokens: 6, params: { max_tokens: 256 } });
      expect(run.toolCalls).toEqual([{ id: "toolu_1", name: "weather", input: { city: "Paris" } }]);
    }
  });

  it("records a failed call as an error run; the caller still gets the SDK's error", async () => {
    const client = anthropic();
    const traceId = unique("t");
    const failed = client.messages.create({
      model: "broken",
      max_tokens: 16,
      messages: [{ role: "user", content: "hi" }],
      promptopsPrompt: prompt,
      promptopsTraceId: traceId,
    });
    await expect(failed).rejects.toBeInstanceOf(Anthropic.InternalServerError);
    await expect(failed).rejects.toThrow(/upstream broke/);
    await po.flush();
    const [run] = await runsOf(server.url, { traceId });
    expect(run).toMatchObject({
      status: "error",
      model: "broken",
      output: null,
      errorClass: "InternalServerError 500",
      versionId: prompt.versionId,
      inputTokens: 0,
    });
    expect(run.errorMessage).toContain("upstream broke");
  });

  it("records an error event in the middle of a stream as an error run with the text so far", async () => {
    const client = anthropic();
    const traceId = unique("t");
    const stream = await client.messages.create({
      model: "overloaded",
      max_tokens: 64,
      messages: [{ role: "user", content: "one two three four" }],
      stream: true,
      promptopsPrompt: prompt,
      promptopsTraceId: traceId,
    });
    let text = "";
    await expect(
      (async () => {
        for await (const event of stream) {
          if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text;
        }
      })(),
    ).rejects.toThrow(/Overloaded/);
    expect(text).toBe("Echo: one ");

    // The helper reports it through its `error` event and its promises.
    const helper = client.messages.stream({
      model: "overloaded",
      max_tokens: 64,
      messages: [{ role: "user", content: "five six seven" }],
      promptopsPrompt: prompt,
      promptopsTraceId: traceId,
    });
    await expect(helper.finalMessage()).rejects.toThrow(/Overloaded/);

    await po.flush();
    const runs = await runsOf(server.url, { traceId });
    expect(runs).toHaveLength(2);
    expect(runs.map((r) => r.output).sort()).toEqual(["Echo: five ", "Echo: one "]);
    for (const run of runs) {
      expect(run).toMatchObject({ status: "error", model: "overloaded", finishReason: null, inputTokens: expect.any(Number) });
      expect(run.errorClass).toMatch(/Error/);
      expect(run.errorMessage).toContain("Overloaded");
      expect(run.ttftMs).toBeGreaterThan(0);
    }
  });

  it("records a stream left early (break, or the helper's abort) with the text read so far", async () => {
    const client = anthropic();
    const traceId = unique("t");
    const stream = await client.messages.create({
      model: MODEL,
      max_tokens: 64,
      messages: [{ role: "user", content: "one two three four five" }],
      stream: true,
      promptopsPrompt: prompt,
      promptopsTraceId: traceId,
    });
    let text = "";
    for await (const event of stream) {
      if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text;
      if (text.includes("two")) break;
    }
    expect(text).toBe("Echo: one two ");

    const helper = client.messages.stream({
      model: MODEL,
      max_tokens: 64,
      messages: [{ role: "user", content: "six seven eight nine ten" }],
      promptopsPrompt: prompt,
      promptopsTraceId: traceId,
    });
    let helperText = "";
    helper.on("text", (delta) => {
      helperText += delta;
      if (helperText.includes("seven")) helper.abort();
    });
    await expect(helper.done()).rejects.toBeInstanceOf(Anthropic.APIUserAbortError);
    expect(helperText).toBe("Echo: six seven ");

    await po.flush();
    const runs = await runsOf(server.url, { traceId });
    expect(runs.map((r) => r.output).sort()).toEqual(["Echo: one two ", "Echo: six seven "]);
    for (const run of runs) expect(run).toMatchObject({ status: "ok", finishReason: null, inputTokens: 5 });
  });

  it("records calls without a prompt too (unattributed), keeps the SDK's APIPromise and the rest of the client", async () => {
    const client = anthropic();
    const traceId = unique("t");
    const plain = await client.messages.create({
      model: MODEL,
      max_tokens: 16,
      messages: [{ role: "user", content: "no prompt" }],
      promptopsTraceId: traceId,
    });
    expect(plain.content[0]).toMatchObject({ text: "Echo: no prompt" });
    const { data, response } = await client.messages
      .create({ model: MODEL, max_tokens: 16, messages: [{ role: "user", content: "with response" }], promptopsPrompt: prompt, promptopsTraceId: traceId })
      .withResponse();
    expect(response.status).toBe(200);
    expect(data.content[0]).toMatchObject({ text: "Echo: with response" });
    const parsed = await client.messages.parse({
      model: MODEL,
      max_tokens: 16,
      messages: [{ role: "user", content: "parse me" }],
      promptopsPrompt: prompt,
      promptopsTraceId: traceId,
    });
    expect(parsed.content[0]).toMatchObject({ text: "Echo: parse me" });
    expect(fake.requests.at(-1)).not.toHaveProperty("promptopsPrompt");

    await po.flush();
    const runs = await runsOf(server.url, { traceId });
    expect(runs).toHaveLength(3);
    const byOutput = Object.fromEntries(runs.map((r) => [r.output, r]));
    expect(byOutput["Echo: no prompt"]).toMatchObject({ versionId: null, promptId: null, provider: "anthropic", model: MODEL, status: "ok" });
    expect(byOutput["Echo: with response"]).toMatchObject({ versionId: prompt.versionId });
    expect(byOutput["Echo: parse me"]).toMatchObject({ versionId: prompt.versionId });
    // The rest of the client works through the wrapper.
    expect(client.baseURL).toBe(fake.url);
    expect(typeof client.messages.countTokens).toBe("function");
    expect(typeof client.messages.batches.list).toBe("function");
  });

  it("with `onlyWithPrompt`, leaves calls without a prompt unrecorded (as wrapOpenAI does)", async () => {
    const client = anthropic({ onlyWithPrompt: true });
    const before = po.stats.tracing.queued;
    await client.messages.create({ model: MODEL, max_tokens: 16, messages: [{ role: "user", content: "quiet" }] });
    const quiet = await client.messages.stream({ model: MODEL, max_tokens: 16, messages: [{ role: "user", content: "quiet stream" }] }).finalText();
    expect(quiet).toBe("Echo: quiet stream");
    expect(po.stats.tracing.queued).toBe(before);
    await client.messages.create({ model: MODEL, max_tokens: 16, messages: [{ role: "user", content: "loud" }], promptopsPrompt: prompt });
    expect(po.stats.tracing.queued).toBe(before + 1);
  });
});
