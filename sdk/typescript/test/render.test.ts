// The offline renderer against the server's: the same templates and values rendered both ways must give the same
// text, messages and errors. Every case here is in the subset the local renderer accepts; the last test checks
// that anything else is refused rather than rendered differently.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PromptOps, type Prompt } from "../src/index.js";
import { renderLocally } from "../src/local.js";
import { ADMIN_KEY, api, startServer, unique, type RunningServer } from "./support.js";

let server: RunningServer;
let po: PromptOps;

beforeAll(async () => {
  server = await startServer();
  po = new PromptOps({ url: server.url, apiKey: ADMIN_KEY, flushOnExit: false });
});

afterAll(async () => {
  await server?.stop();
});

interface Case {
  title: string;
  version: Record<string, unknown>;
  values: Record<string, unknown>;
}

const CASES: Case[] = [
  { title: "plain substitution, spaces optional", version: { template: "Hi {{name}}, {{ name }} / {{   name   }}!", variables: [{ name: "name" }] }, values: { name: "Ada" } },
  { title: "a trailing newline is kept", version: { template: "line {{ a }}\n\n", variables: [{ name: "a" }] }, values: { a: "x" } },
  { title: "unicode and markup-like text in values", version: { template: "« {{ a }} »", variables: [{ name: "a" }] }, values: { a: "{{ b }} {% raw %} <b>&amp;</b> ünï 🎉" } },
  { title: "defaults fill in, null counts as not supplied", version: { template: "{{ a }}-{{ b }}", variables: [{ name: "a", default: "A" }, { name: "b", default: "B" }] }, values: { b: null } },
  { title: "optional without default renders empty", version: { template: "[{{ opt }}]", variables: [{ name: "opt", required: false }] }, values: {} },
  { title: "integers", version: { template: "{{ n }} items, {{ big }}", variables: [{ name: "n", type: "integer" }, { name: "big", type: "number" }] }, values: { n: 3, big: -9007199254740991 } },
  { title: "undeclared values pass through", version: { template: "{{ extra }}", variables: [] }, values: { extra: "E", unused: "U" } },
  { title: "missing: declared in order, then undeclared sorted", version: { template: "{{ zeta }} {{ alpha }} {{ b }} {{ a }}", variables: [{ name: "b" }, { name: "a" }] }, values: {} },
  { title: "missing declared even when unused", version: { template: "static", variables: [{ name: "needed" }] }, values: {} },
  { title: "type mismatches reported together", version: { template: "{{ s }} {{ i }}", variables: [{ name: "s" }, { name: "i", type: "integer" }, { name: "b", type: "boolean", required: false }] }, values: { s: 5, i: 1.5, b: "yes" } },
  { title: "chat messages", version: { kind: "chat", messages: [{ role: "system", content: "You are {{ who }}." }, { role: "user", content: "{{q}}" }, { role: "assistant", content: "no variables" }], variables: [{ name: "who", default: "kind" }, { name: "q" }] }, values: { q: "Why?" } },
  { title: "chat missing", version: { kind: "chat", messages: [{ role: "user", content: "{{ q }} {{ r }}" }], variables: [] }, values: { r: "x" } },
];

async function outcome(render: () => Promise<unknown>) {
  try {
    const r = (await render()) as { kind: string; text: string | null; messages: unknown };
    return { ok: { kind: r.kind, text: r.text, messages: r.messages } };
  } catch (e: any) {
    return { error: { code: e.code, status: e.status, detail: e.problem?.detail, missing: e.problem?.missing, errors: e.problem?.errors } };
  }
}

describe("local rendering matches the server", () => {
  it.each(CASES)("$title", async ({ version, values }) => {
    const name = unique("sdk/parity");
    await api(server.url, "POST", "/api/v1/prompts", { name, ...version });
    const prompt: Prompt = await po.getPrompt(name);
    const remote = await outcome(() => prompt.render(values));
    const local = await outcome(async () => renderLocally(prompt, values));
    expect(local).toEqual(remote);
  });

  it("refuses templates and values outside the subset instead of guessing", async () => {
    const refusals: Array<[Record<string, unknown>, Record<string, unknown>]> = [
      [{ template: "{{ a | upper }}", variables: [{ name: "a" }] }, { a: "x" }],
      [{ template: "{% if a %}yes{% endif %}", variables: [{ name: "a" }] }, { a: "x" }],
      [{ template: "{# note #}{{ a }}", variables: [{ name: "a" }] }, { a: "x" }],
      [{ template: "{{- a -}}", variables: [{ name: "a" }] }, { a: "x" }],
      [{ template: "{{ a.b }}", variables: [{ name: "a", type: "object" }] }, { a: { b: 1 } }],
      [{ template: "{{ a }}", variables: [{ name: "a", type: "boolean" }] }, { a: true }],
      [{ template: "{{ a }}", variables: [{ name: "a", type: "number" }] }, { a: 1.5 }],
      [{ template: "{{ a }}", variables: [{ name: "a", type: "array" }] }, { a: ["x"] }],
    ];
    for (const [version, values] of refusals) {
      const name = unique("sdk/refuse");
      await api(server.url, "POST", "/api/v1/prompts", { name, ...version });
      const prompt = await po.getPrompt(name);
      await expect(prompt.render(values)).resolves.toMatchObject({ renderedBy: "server" });
      expect(() => renderLocally(prompt, values)).toThrow(expect.objectContaining({ code: "local_render_unsupported" }));
    }
  });
});
