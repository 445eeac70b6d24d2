// Every command module against a real `promptops serve` (echo model: answers with the prompt it was sent).
import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Api, askKey, connect, KEY_SECRET, PromptOpsError } from "../src/client.js";
import { evaluate, parseInlineCases, promptFileBody } from "../src/commands/evaluate.js";
import { rate } from "../src/commands/feedback.js";
import { generate } from "../src/commands/generate.js";
import { HANDLERS } from "../src/commands/index.js";
import { refine } from "../src/commands/refine.js";
import { lintPromptFile, usedVariables } from "../src/lint.js";
import { codeFor, treeChildren } from "../src/registry.js";
import { ADMIN_KEY, adminApi, ECHO, FakeUi, freePort, keyWithRole, seedPrompt, startServer } from "./support.js";

let server: { url: string; stop: () => Promise<void> };

beforeAll(async () => {
  server = await startServer();
  await seedPrompt(server.url, "vsc/echo", "{{ input }}", "Answer: {{ input }}");
});

afterAll(async () => {
  await server?.stop();
});

async function promptNames(): Promise<string[]> {
  const page = (await adminApi(server.url, "GET", "/api/v1/prompts?limit=200")) as { items: { name: string }[] };
  return page.items.map((p) => p.name);
}

describe("PromptOpt: Generate", () => {
  test("task + selection as context -> scored candidates -> the chosen text is inserted", async () => {
    const ui = new FakeUi(server.url);
    ui.openEditor("# shop reviews\nReviews come from an online shop.\n", "Reviews come from an online shop.");
    ui.inputs.push("Classify the sentiment of a product review");
    ui.picks.push((items) => items[0], "Insert the prompt text");
    const out = await generate(ui, { count: 3, model: ECHO });
    expect(out).toBeDefined();
    const { list, chosen, inserted } = out!;
    expect(list.candidates).toHaveLength(3);
    const scores = list.candidates.map((c) => c.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    const shown = ui.pickedFrom[0];
    expect(shown.items).toHaveLength(3);
    expect(shown.items[0].label.startsWith(scores[0].toFixed(2))).toBe(true);
    expect(chosen.versionId).toMatch(/^ver_/);
    expect(inserted).toBe(chosen.prompt);
    expect(ui.editorText!.document).toContain(chosen.prompt);
    expect(ui.editorText!.document.startsWith("# shop reviews\n")).toBe(true);
    expect(await promptNames()).toContain(list.name); // candidates are saved drafts
  });

  test("insert a registry reference instead; cancelling the task does nothing", async () => {
    const ui = new FakeUi(server.url);
    ui.openEditor("", "", "python");
    ui.inputs.push("Summarise a support ticket in one sentence");
    ui.picks.push((items) => items.at(-1), "Insert a registry reference");
    const out = await generate(ui, { count: 2, model: ECHO });
    expect(out!.inserted).toBe(`${out!.list.name}@${out!.chosen.version}`);
    expect(ui.editorText!.document).toBe(out!.inserted);

    const cancelled = new FakeUi(server.url);
    cancelled.inputs.push(undefined);
    expect(await generate(cancelled)).toBeUndefined();
  });
});

describe("PromptOpt: Evaluate", () => {
  test("the selection on inline cases -> a results panel with pass rate, outputs and verdict", async () => {
    const ui = new FakeUi(server.url);
    ui.openEditor("PROMPT = '{{ input }}'\n", "{{ input }}");
    ui.picks.push("Type test cases");
    ui.inputs.push("positive => positive; negative => positive");
    const out = await evaluate(ui, { model: ECHO });
    expect(out!.result.cases).toHaveLength(2);
    expect(out!.result.cases.map((c) => c.output)).toEqual(["positive", "negative"]);
    expect(out!.result.cases.map((c) => c.passed)).toEqual([true, false]);
    expect(out!.result.passRate).toBe(0.5);
    expect(out!.result.promptId).toMatch(/^inline:/);
    expect(out!.verdict).toContain("No production version");
    expect(ui.panels).toHaveLength(1);
    const html = ui.panels[0].html;
    expect(html).toContain('<span class="big" id="pass-rate">50.0%</span>');
    expect(html).toContain("✗ fail");
    expect(html).toContain("Content-Security-Policy");
  });

  test("a registry version against its production version: the verdict compares them", async () => {
    const ui = new FakeUi(server.url); // no editor: pick from the registry
    ui.picks.push("vsc/echo", "vsc/echo@2", "Type test cases");
    ui.inputs.push("positive => positive\nnegative => negative");
    const out = await evaluate(ui);
    expect(out!.subject).toBe("vsc/echo@2");
    expect(out!.production).not.toBeNull();
    expect(out!.production!.passRate).toBe(1);
    expect(out!.result.cases.map((c) => c.output)).toEqual(["Answer: positive", "Answer: negative"]);
    const same = out!.result.passRate === 1;
    expect(out!.verdict).toMatch(same ? /^Same as production/ : /^Worse than production/);
    expect(out!.verdict).toContain("vsc/echo@production passes 100.0%");
    expect(ui.panels[0].html).toContain("Answer: positive");
    // `PANEL_HTML_OUT=/path.html npx vitest run` keeps the panel for the README screenshot (headless chromium)
    if (process.env.PANEL_HTML_OUT) writeFileSync(process.env.PANEL_HTML_OUT, ui.panels[0].html);
  });

  test("a registry dataset as the cases", async () => {
    await adminApi(server.url, "POST", "/api/v1/datasets", {
      name: "vsc/reviews",
      cases: [
        { input: "positive", expected: "positive" },
        { input: "negative", expected: "negative" },
        { input: "meh", expected: "negative" },
      ],
    });
    const ui = new FakeUi(server.url);
    ui.openEditor("{{ input }}", "{{ input }}");
    ui.picks.push("Use a registry dataset", "vsc/reviews");
    const out = await evaluate(ui, { model: ECHO });
    expect(out!.result.cases).toHaveLength(3);
    expect(out!.result.passRate).toBeCloseTo(2 / 3, 3);
  });

  test("inline cases and .prompt.md bodies parse", () => {
    expect(parseInlineCases("a => b; c\n d=>")).toEqual([{ input: "a", expected: "b" }, { input: "c" }, { input: "d", expected: null }]);
    expect(promptFileBody("---\nname: x\nlabels: [a]\n---\nHello {{ who }}\n")).toBe("Hello {{ who }}");
    expect(promptFileBody("Hello")).toBe("Hello");
  });
});

describe("PromptOpt: Refine", () => {
  const VERBOSE = "Is the sentiment of the following review positive or negative?\n\nReview: {{ review }}\nSentiment:";

  test("raw selected text: diff shown, accept replaces the selection, nothing is saved", async () => {
    const before = await promptNames();
    const ui = new FakeUi(server.url);
    ui.openEditor(`PROMPT = """${VERBOSE}"""\n`, VERBOSE);
    ui.inputs.push("answer with one word");
    ui.picks.push("Accept");
    const out = await refine(ui, { model: ECHO });
    expect(out!.source).toBe("text");
    expect(out!.proposal.versionId).toBeNull();
    expect(out!.proposal.strategy).toBe("tighten-format");
    expect(ui.diffs).toHaveLength(1);
    expect(ui.diffs[0].left).toBe(VERBOSE);
    expect(ui.diffs[0].right).toContain("Answer with exactly one word.");
    expect(ui.editorText!.document).toContain("Answer with exactly one word.");
    expect(ui.editorText!.document.startsWith('PROMPT = """')).toBe(true);
    expect(await promptNames()).toEqual(before);
  });

  test("an open .prompt.md file without a selection: its body is refined, the front matter kept", async () => {
    const ui = new FakeUi(server.url);
    const file = `---\nname: sentiment\n---\n${VERBOSE}\n`;
    ui.openEditor(file, "", "promptmd", "/work/sentiment.prompt.md");
    ui.inputs.push("answer with one word");
    ui.picks.push("Accept");
    await refine(ui, { model: ECHO });
    expect(ui.editorText!.document.startsWith("---\nname: sentiment\n---\n")).toBe(true);
    expect(ui.editorText!.document).toContain("Answer with exactly one word.");
  });

  test("a registry prompt: dry run, diff, accept saves a new version; reject saves nothing", async () => {
    await seedPrompt(server.url, "vsc/sentiment", VERBOSE.replace("review", "input").replace("{{ review }}", "{{ input }}"));
    const versions = async () =>
      ((await adminApi(server.url, "GET", "/api/v1/prompts/vsc/sentiment/versions")) as { items: unknown[] }).items.length;

    const rejecting = new FakeUi(server.url);
    rejecting.picks.push("vsc/sentiment", "vsc/sentiment@production", "Reject");
    rejecting.inputs.push("answer with one word");
    const rejected = await refine(rejecting);
    expect(rejected!.accepted).toBe(false);
    expect(rejected!.proposal.versionId).toBeNull();
    expect(await versions()).toBe(1);

    const ui = new FakeUi(server.url);
    ui.picks.push("vsc/sentiment", "vsc/sentiment@production", "Accept");
    ui.inputs.push("answer with one word");
    const out = await refine(ui);
    expect(out!.source).toBe("registry");
    expect(ui.diffs[0].left).toContain("Is the sentiment");
    expect(out!.saved!.version).toBe(2);
    expect(out!.saved!.prompt).toBe(out!.proposal.prompt);
    expect(out!.saved!.modelConfig.params).toMatchObject({ max_tokens: 4 });
    expect(await versions()).toBe(2);
    expect(ui.infos.at(-1)).toContain("saved vsc/sentiment v2");
  });
});

describe("feedback, the Prompts tree and insertion", () => {
  test("rate a version 1-5 with a note", async () => {
    const ui = new FakeUi(server.url);
    ui.picks.push("vsc/echo", "vsc/echo@production", "4");
    ui.inputs.push("fine for short reviews");
    const saved = await rate(ui);
    expect(saved!.score).toBe(4);
    expect(saved!.notes).toBe("fine for short reviews");
    expect(saved!.versionId).toMatch(/^ver_/);
  });

  test("tree: the key's project -> prompts -> labels and versions; insert reference and code", async () => {
    const api = new Api(server.url, ADMIN_KEY);
    const roots = await treeChildren(api);
    // An API key sees its own project only: one project node, with the key's role.
    expect(roots).toHaveLength(1);
    expect(roots[0]).toMatchObject({ kind: "project", expandable: true, description: "PromptOpsAdmin" });
    expect(roots[0].project).toMatch(/^prj_/);
    const prompts = await treeChildren(api, roots[0]);
    expect(prompts.every((n) => n.kind === "prompt" && n.project === roots[0].project)).toBe(true);
    const echo = prompts.find((n) => n.label === "vsc/echo")!;
    expect(echo.expandable).toBe(true);
    const children = await treeChildren(api, echo);
    expect(children.map((c) => c.label)).toEqual(["@production", "v2", "v1"]);
    expect(children[0].ref).toBe("vsc/echo@production");

    const ui = new FakeUi(server.url);
    ui.openEditor("", "", "typescript", "/work/a.ts");
    expect(await HANDLERS["promptops.insertCode"](ui, children[0])).toBe(
      'const prompt = await po.getPrompt("vsc/echo", { label: "production" }); // po = new PromptOps() from "@promptops/sdk/node"\n',
    );
    ui.openEditor("", "", "markdown", "/work/a.md");
    expect(await HANDLERS["promptops.insertCode"](ui, children[1])).toBe("Answer: {{ input }}");
    ui.openEditor("", "", "python");
    expect(await HANDLERS["promptops.insertReference"](ui, children[2])).toBe("vsc/echo@1");
    expect(ui.editorText!.document).toBe("vsc/echo@1");
    expect(codeFor("a/b@3", "python")).toBe('prompt = po.get_prompt("a/b", version=3)  # po = promptops_sdk.PromptOps()\n');
  });
});

describe("settings and errors", () => {
  test("the key goes to secret storage; without one the user is asked", async () => {
    const ui = new FakeUi(server.url, null);
    ui.inputs.push(undefined); // asked for a key, cancelled
    expect(await connect(ui)).toBeUndefined();
    ui.inputs.push(`  ${ADMIN_KEY}  `);
    expect(await askKey(ui)).toBe(ADMIN_KEY);
    expect(ui.store.get(KEY_SECRET)).toBe(ADMIN_KEY);
    await HANDLERS["promptops.clearApiKey"](ui);
    expect(ui.store.has(KEY_SECRET)).toBe(false);
  });

  test("unreachable server, refused key (401), missing permission (403), bad URL", async () => {
    const down = new FakeUi(`http://127.0.0.1:${await freePort()}`);
    down.inputs.push("a task");
    await expect(generate(down)).rejects.toThrow(/Cannot reach the PromptOps server at http:\/\/127\.0\.0\.1:\d+/);

    const refused = new FakeUi(server.url, "po_wrong_key_000000000000000000000000000000000");
    refused.inputs.push("a task");
    const error = await generate(refused).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PromptOpsError);
    expect((error as PromptOpsError).status).toBe(401);
    expect((error as Error).message).toContain('Run "PromptOps: Set API key"');

    const viewer = new FakeUi(server.url, await keyWithRole(server.url, "Viewer"));
    viewer.inputs.push("a task");
    const denied = await generate(viewer).catch((e: unknown) => e);
    expect((denied as PromptOpsError).status).toBe(403);
    expect((denied as Error).message).toMatch(/lacks a permission/);

    const bad = new FakeUi("ftp://example");
    await expect(connect(bad)).rejects.toThrow(/not an http\(s\) URL/);
  });
});

describe(".prompt.md lint diagnostics", () => {
  test("findings of the lint endpoint land on the document's lines, after the front matter", async () => {
    const api = new Api(server.url, ADMIN_KEY);
    const doc = "---\nname: broken\n---\nSummarise this:\n{% if input %}{{ input }}\n";
    const found = await lintPromptFile(api, doc);
    const parse = found.find((d) => d.code.startsWith("PL001"));
    expect(parse).toBeDefined();
    expect(parse!.severity).toBe("error");
    expect(parse!.line).toBeGreaterThanOrEqual(3);
    expect(usedVariables("{{ a }} {{- b.c }} {{ a | upper }} {% if x %}")).toEqual(["a", "b"]);
    expect(await lintPromptFile(api, "---\nname: empty\n---\n")).toEqual([]);
  });
});
