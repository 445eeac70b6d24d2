// The capture gateway (/v1 of `promptops serve`) driven by the official `openai` npm client: the app changes only
// baseURL and its key. The gateway routes `fake/<model>` to a provider connection pointing at a fake
// OpenAI-compatible server (loopback) and records every call as a run.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, api, startFakeOpenAI, startServer, unique, until, type FakeOpenAI, type RunningServer } from "./support.js";

let server: RunningServer;
let fake: FakeOpenAI;
const PROMPT = unique("gw/triage");

beforeAll(async () => {
  fake = await startFakeOpenAI();
  // The SSRF guard refuses loopback upstreams unless the operator allows them.
  server = await startServer({ PROMPTOPS_PROVIDER_ALLOWED_HOSTS: "127.0.0.1" });
  await api(server.url, "POST", "/api/v1/providers", {
    name: "fake",
    type: "openai",
    baseUrl: fake.url,
    apiKey: "sk-upstream",
    maxRetries: 0,
  });
  await api(server.url, "POST", "/api/v1/prompts", {
    name: PROMPT,
    template: "Triage: {{ ticket }}",
    variables: [{ name: "ticket" }],
    labels: ["production"],
  });
});

afterAll(async () => {
  await Promise.all([server?.stop(), fake?.close()]);
});

function client(headers: Record<string, string> = {}) {
  return new OpenAI({ baseURL: `${server.url}/v1`, apiKey: ADMIN_KEY, maxRetries: 0, defaultHeaders: headers });
}

/** The run the gateway recorded for a response (written behind the response, so polled). */
function recorded(runId: string | null): Promise<any> {
  expect(runId).toMatch(/^run_/);
  return until(async () => {
    try {
      return await api(server.url, "GET", `/api/v1/runs/${runId}`);
    } catch {
      return undefined;
    }
  }, `run ${runId}`);
}

describe("gateway with the openai npm client", () => {
  it("answers a JSON chat completion and records it as a gateway run", async () => {
    const { data, response } = await client()
      .chat.completions.create({ model: "fake/gpt-4o-mini", messages: [{ role: "user", content: "hello gateway" }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe("Echo: hello gateway");
    expect(fake.requests.at(-1)).toMatchObject({ model: "gpt-4o-mini" });
    expect(fake.requests.at(-1).messages).toEqual([{ role: "user", content: "hello gateway" }]);
    const run = await recorded(response.headers.get("x-promptops-run-id"));
    expect(run).toMatchObject({ source: "gateway", status: "ok", provider: "fake", model: "gpt-4o-mini" });
    expect(run.output).toBe("Echo: hello gateway");
    expect(run.inputTokens).toBe(2);
    expect(run.outputTokens).toBe(3);
  });

  it("streams chunk by chunk and records the whole answer", async () => {
    const { data: stream, response } = await client()
      .chat.completions.create({
        model: "fake/gpt-4o-mini",
        messages: [{ role: "user", content: "stream these four words" }],
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    const pieces: string[] = [];
    for await (const chunk of stream) pieces.push(chunk.choices[0]?.delta?.content ?? "");
    expect(pieces.filter(Boolean).length).toBeGreaterThan(2);
    expect(pieces.join("")).toBe("Echo: stream these four words");
    const run = await recorded(response.headers.get("x-promptops-run-id"));
    expect(run.output).toBe("Echo: stream these four words");
    expect(run.status).toBe("ok");
  });

  it("passes tool calls through", async () => {
    const answer = await client().chat.completions.create({
      model: "fake/gpt-4o-mini",
      messages: [{ role: "user", content: "weather?" }],
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: {} } } }],
    });
    const call = answer.choices[0]?.message.tool_calls?.[0];
    expect(answer.choices[0]?.finish_reason).toBe("tool_calls");
    expect(call?.type === "function" ? call.function : undefined).toEqual({ name: "get_weather", arguments: '{"city":"Paris"}' });
  });

  it("attributes a call to a registry prompt named in X-PromptOps-Prompt", async () => {
    const { response } = await client({ "X-PromptOps-Prompt": `${PROMPT}@production` })
      .chat.completions.create({ model: "fake/gpt-4o-mini", messages: [{ role: "user", content: "Triage: printer on fire" }] })
      .withResponse();
    const run = await recorded(response.headers.get("x-promptops-run-id"));
    const prompt = await api(server.url, "GET", `/api/v1/prompts/${PROMPT}@production`);
    expect(run.promptId).toBe(prompt.prompt.id);
    expect(run.versionId).toBe(prompt.version.id);
  });

  it("answers errors in OpenAI's shape: unknown model, bad key, upstream failure", async () => {
    const notFound = await client()
      .chat.completions.create({ model: "nowhere/gpt-4o-mini", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(OpenAI.NotFoundError);

    const badKey = await new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "po_wrong_key", maxRetries: 0 }).chat.completions
      .create({ model: "fake/gpt-4o-mini", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(badKey).toBeInstanceOf(OpenAI.AuthenticationError);

    const broken = await client()
      .chat.completions.create({ model: "fake/broken", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(broken).toBeInstanceOf(OpenAI.APIError);
    expect((broken as InstanceType<typeof OpenAI.APIError>).status).toBeGreaterThanOrEqual(500);
  });

  it("lists the models this key can route to", async () => {
    const ids: string[] = [];
    for await (const model of client().models.list()) ids.push(model.id);
    expect(ids.some((id) => id.startsWith("fake/"))).toBe(true);
  });
});
