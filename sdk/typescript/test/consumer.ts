// Not run: type-checked by `tsc --noEmit -p tsconfig.json` (make test), after the build. It imports the package by
// name, so it sees what an application sees: the `exports` map and the declarations in dist/.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { PromptOps, type Prompt, type Rendered, type Stats } from "@promptops/sdk/node";
import { PromptOps as CorePromptOps, localStorageStore } from "@promptops/sdk";
import { wrapAnthropic } from "@promptops/sdk/anthropic";
import { wrapOpenAI } from "@promptops/sdk/openai";

export async function consumer(): Promise<[string | null, Stats]> {
  const po = new PromptOps({ cacheDir: "/tmp/x" });
  const browser = new CorePromptOps({ url: "http://127.0.0.1:8000", apiKey: "po_x", store: localStorageStore() });
  const p: Prompt = await po.getPrompt("a", { label: "production", fallback: "Hi {{ name }}" });
  const r: Rendered = await p.render({ name: "Ada" });
  const openai = wrapOpenAI(new OpenAI({ apiKey: "x" }), po);
  const c = await openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }], promptopsPrompt: p });
  const s = await openai.chat.completions.create({ model: "m", messages: [], stream: true, promptopsPrompt: p, promptopsTraceId: "t" });
  for await (const chunk of s) void chunk.choices[0]?.delta.content;
  // @ts-expect-error a misspelt option is refused
  await openai.chat.completions.create({ model: "m", messages: [], promptopsPromptt: p });
  const claude = wrapAnthropic(new Anthropic({ apiKey: "x" }), po, { onlyWithPrompt: false });
  const m = await claude.messages.create({ model: "m", max_tokens: 8, messages: [{ role: "user", content: "hi" }], promptopsPrompt: p });
  const ms = await claude.messages.create({ model: "m", max_tokens: 8, messages: [], stream: true, promptopsTraceId: "t" });
  for await (const event of ms) void event.type;
  const text: string = await claude.messages.stream({ model: "m", max_tokens: 8, messages: [], promptopsPrompt: p }).finalText();
  void [m.content[0]?.type, text, claude.messages.batches];
  // @ts-expect-error a misspelt option is refused
  await claude.messages.create({ model: "m", max_tokens: 8, messages: [], promptopsPromptt: p });
  // @ts-expect-error a label or a version, as a string or a number
  await po.getPrompt("a", { version: "3" });
  await browser.trace(p, (t) => t.record({ model: "m", input: { messages: p.toOpenAIMessages(r) } }));
  return [c.choices[0]?.message.content ?? null, po.stats];
}
