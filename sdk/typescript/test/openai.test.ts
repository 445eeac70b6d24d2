// wrapOpenAI with the official `openai` npm client against a fake OpenAI-compatible server (loopback), recording
// into a real PromptOps server: JSON, streams, tool calls, errors; calls without a prompt are not recorded.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PromptOps, type Prompt } from "../src/index.js";
import { wrapOpenAI } from "../src/openai.js";
import { ADMIN_KEY, api, runsOf, startFakeOpenAI, startServer, unique, type FakeOpenAI, type RunningServer } from "./support.js";

let server: RunningServer;
let fake: FakeOpenAI;
let po: PromptOps;
let prompt: Prompt;
const NAME = unique("sdk/chat");

beforeAll(async () => {
  [server, fake] = await Promise.all([startServer(), startFakeOpenAI()]);
  await api(server.url, "POST", "/api/v1/prompts", {
    name: NAME,
    kind: "chat",
    messages: [
      { role: "system", content: "You are terse." },
      { role: "user", content: "{{ question }}" },
    ],
    variables: [{ name: "question" }],
    modelConfig: { provider: "openai", model: "gpt-4o-mini", params: { temperature: 0.2 } },
    labels: ["production"],
  });
  po = new PromptOps({ url: server.url, apiKey: ADMIN_KEY, flushOnExit: false });
  prompt = await po.getPrompt(NAME, { label: "production" });
});

afterAll(async () => {
  await po?.shutdown();
  await Promise.all([server?.stop(), fake?.close()]);
});

function openai() {
  return wrapOpenAI(new OpenAI({ baseURL: fake.url, apiKey: "sk-test", maxRetries: 0 }), po);
}

describe("wrapOpenAI", () => {
  it("records a JSON call made with a registry prompt, and strips the PromptOps fields", async () => {
    const client = openai();
    const traceId = unique("t");
    const messages = prompt.toOpenAIMessages(await prompt.render({ question: "What is 2 + 2?" }));
    const answer = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: messages as OpenAI.ChatCompletionMessageParam[],
      temperature: 0.2,
      promptopsPrompt: prompt,
      promptopsTraceId: traceId,
    });
    expect(answer.choices[0]?.message.content).toBe("Echo: What is 2 + 2?");
    const sent = fake.requests.at(-1);
    expect(sent).not.toHaveProperty("promptopsPrompt");
    expect(sent).not.toHaveProperty("promptopsTraceId");
    expect(sent).toMatchObject({ model: "gpt-4o-mini", temperature: 0.2 });

    await po.flush();
    const [run] = await runsOf(server.url, { traceId });
    expect(run).toMatchObject({
      promptId: prompt.promptId,
      versionId: prompt.versionId,
      model: "gpt-4o-mini",
      params: { temperature: 0.2 },
      input: { messages: [{ role: "system", content: "You are terse." }, { role: "user", content: "What is 2 + 2?" }] },
      output: "Echo: What is 2 + 2?",
      finishReason: "stop",
      inputTokens: 8,
      outputTokens: 6,
      status: "ok",
      source: "sdk",
      ttftMs: null,
    });
    expect(run.latencyMs).toBeGreaterThan(0);
  });

  it("records a stream when it ends, with the joined text, usage and time to first token", async () => {
    const client = openai();
    const traceId = unique("t");
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "stream this please" }],
      stream: true,
      stream_options: { include_usage: true },
      promptopsPrompt: prompt,
      promptopsTraceId: traceId,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe("Echo: stream this please");
    await po.flush();
    const [run] = await runsOf(server.url, { traceId });
    expect(run).toMatchObject({ output: text, finishReason: "stop", inputTokens: 3, outputTokens: 4, status: "ok", versionId: prompt.versionId });
    expect(run.ttftMs).toBeGreaterThan(0);
    expect(run.ttftMs).toBeLessThanOrEqual(run.latencyMs);
  });

  it("records tool calls, JSON and streamed", async () => {
    const client = openai();
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: "function", function: { name: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } } },
    ];
    const traceId = unique("t");
    const json = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "weather?" }],
      tools,
      promptopsPrompt: prompt,
      promptopsTraceId: traceId,
    });
    expect(json.choices[0]?.finish_reason).toBe("tool_calls");
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "weather?" }],
      tools,
      stream: true,
      promptopsPrompt: prompt,
      promptopsTraceId: traceId,
    });
    for await (const _chunk of stream) {
      /* drain */
    }
    await po.flush();
    const runs = await runsOf(server.url, { traceId });
    expect(runs).toHaveLength(2);
    for (const run of runs) {
      expect(run.finishReason).toBe("tool_calls");
      expect(run.output).toBeNull();
      expect(run.toolCalls).toEqual([{ id: "call_1", type: "function", function: { name: "weather", arguments: '{"city":"Paris"}' } }]);
    }
  });

  it("records a failed call as an error run; the caller still gets the error", async () => {
    const client = openai();
    const traceId = unique("t");
    await expect(
      client.chat.completions.create({ model: "broken", messages: [{ role: "user", content: "hi" }], promptopsPrompt: prompt, promptopsTraceId: traceId }),
    ).rejects.toThrow(/upstream broke/);
    await po.flush();
    const [run] = await runsOf(server.url, { traceId });
    expect(run).toMatchObject({ status: "error", model: "broken", output: null });
    expect(run.errorClass).toContain("500");
    expect(run.errorMessage).toContain("upstream broke");
  });

  it("records an early-stopped stream with the text read so far", async () => {
    const client = openai();
    const traceId = unique("t");
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "one two three four five" }],
      stream: true,
      promptopsPrompt: prompt,
      promptopsTraceId: traceId,
    });
    let text = "";
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (text.includes("two")) break;
    }
    await po.flush();
    const [run] = await runsOf(server.url, { traceId });
    expect(run).toMatchObject({ output: text, status: "ok", finishReason: null });
  });

  it("leaves calls without a prompt alone, and keeps openai's APIPromise helpers", async () => {
    const client = openai();
    const before = po.stats.tracing.queued;
    const plain = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
    expect(plain.choices[0]?.message.content).toBe("Echo: hi");
    const { data, response } = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi there" }], promptopsPrompt: prompt })
      .withResponse();
    expect(response.status).toBe(200);
    expect(data.choices[0]?.message.content).toBe("Echo: hi there");
    expect(po.stats.tracing.queued).toBe(before + 1);
    // The rest of the client works through the wrapper.
    expect(client.baseURL).toBe(fake.url);
    expect(typeof client.models.list).toBe("function");
  });
});
