// `.prompt.md` files and the registry against a real `promptops serve`: push, pull, the CodeLens status, variable
// completion, search, and the Prompts tree from the project down; with the Python CLI on the same files.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Api, PromptOpsError } from "../src/client.js";
import { HANDLERS } from "../src/commands/index.js";
import { parseSearch, search } from "../src/commands/search.js";
import { pull, push, registryStatus, statusLenses, VersionCache } from "../src/commands/sync.js";
import {
  canonical,
  contentHash,
  dumpPromptFile,
  fileStatus,
  openTagPrefix,
  parsePromptFile,
  PromptFileError,
  splitFrontMatter,
  templateVariables,
  variableCompletions,
} from "../src/promptfile.js";
import { listVersions, promptPath, treeChildren, type VersionSummary } from "../src/registry.js";
import { ADMIN_KEY, adminApi, ECHO, FakeUi, freePort, keyWithRole, startServer } from "./support.js";

const ROOT = join(__dirname, "..", "..", "..");
const CLI = process.env.PROMPTOPS_BIN ?? join(ROOT, ".venv", "bin", "promptops");

let server: { url: string; stop: () => Promise<void> };
let api: Api;

beforeAll(async () => {
  server = await startServer();
  api = new Api(server.url, ADMIN_KEY);
});

afterAll(async () => {
  await server?.stop();
});

const workspace = () => mkdtempSync(join(tmpdir(), "promptops-vscode-ws-"));

/** `promptops <args>` as the admin key on the test server (the CLI the file format belongs to). */
function cli(args: string[], cwd: string): unknown {
  const out = execFileSync(CLI, [...args, "--json"], {
    cwd,
    encoding: "utf8",
    env: {
      ...process.env,
      PROMPTOPS_URL: server.url,
      PROMPTOPS_API_KEY: ADMIN_KEY,
      PROMPTOPS_CONFIG: join(cwd, "cli-config.json"),
      NO_COLOR: "1",
    },
  });
  return JSON.parse(out);
}

async function versionsOf(name: string): Promise<VersionSummary[]> {
  return listVersions(api, name);
}

const SUMMARY = `---
name: sync/summary
description: Summarise a support ticket
tags: [support, billing]
variables:
  - {name: ticket, type: string, description: The ticket text}
  - {name: tone, required: false, default: neutral}
modelConfig: {provider: echo, model: echo}
labels: [staging]
---
Summarise this ticket in a {{ tone }} tone:
{{ ticket }}
`;

describe("the prompt-file format", () => {
  test("front matter split and parse like the CLI (body byte for byte; errors name the file)", () => {
    expect(splitFrontMatter("---\nname: a\n---\nHi\n---\nthere")).toEqual({ header: "name: a\n", body: "Hi\n---\nthere" });
    expect(splitFrontMatter("\ufeff---\r\nname: a\r\n---\r\nbody")).toEqual({ header: "name: a\r\n", body: "body" });
    expect(splitFrontMatter("---\n---\n")).toEqual({ header: "", body: "" });
    const body = parsePromptFile(SUMMARY);
    expect(body).toMatchObject({ name: "sync/summary", kind: "text", tags: ["support", "billing"], labels: ["staging"] });
    expect(body.template).toBe("Summarise this ticket in a {{ tone }} tone:\n{{ ticket }}\n");
    // YAML 1.1 like PyYAML: `no` is false.
    expect(parsePromptFile("---\nname: a\nvariables: [{name: x, required: no}]\n---\n").variables).toEqual([{ name: "x", required: false }]);
    expect(parsePromptFile("---\nname: c\nmessages: [{role: user, content: '{{ q }}'}]\n---\n").kind).toBe("chat");
    const bad: [string, RegExp][] = [
      ["name: a\n", /starts with '---'/],
      ["---\nname: a\nbody", /no closing '---'/],
      ["---\nname: [a\n---\n", /not valid YAML/],
      ["---\n- a\n---\n", /must be a YAML mapping/],
      ["---\nname: a\ncolour: red\n---\n", /unknown front matter keys: colour/],
      ["---\ndescription: x\n---\n", /needs a 'name'/],
      ["---\nname: c\nmessages: [{role: user, content: hi}]\n---\nbody\n", /body must be empty/],
    ];
    for (const [text, message] of bad) {
      expect(() => parsePromptFile(text, "x.prompt.md")).toThrow(PromptFileError);
      expect(() => parsePromptFile(text, "x.prompt.md")).toThrow(message);
    }
  });

  test("the normalised content fills in what the server fills in", () => {
    const a = canonical(parsePromptFile("---\nname: a\nvariables: [{name: x}]\n---\nHi {{ x }}"));
    expect(a).toEqual({
      kind: "text",
      template: "Hi {{ x }}",
      messages: null,
      variables: [{ name: "x", type: "string", required: true, default: null, description: "" }],
      modelConfig: { params: {} },
      responseSchema: null,
    });
    // Commit message, labels, description and metadata are not content.
    const b = parsePromptFile("---\nname: a\ndescription: d\nlabels: [x]\nmetadata: {k: 1}\ncommitMessage: m\nvariables: [{name: x, type: string, required: true}]\n---\nHi {{ x }}");
    expect(contentHash(b)).toBe(contentHash(parsePromptFile("---\nname: a\nvariables: [{name: x}]\n---\nHi {{ x }}")));
    expect(contentHash(b)).not.toBe(contentHash(parsePromptFile("---\nname: a\nvariables: [{name: x}]\n---\nHi {{ x }}\n")));
  });
});

describe("PromptOps: Push to registry", () => {
  test("a new file creates the prompt with its front-matter labels; an edit adds a version and moves them", async () => {
    const ui = new FakeUi(server.url);
    ui.openEditor(SUMMARY, "", "promptmd", "/ws/sync/summary.prompt.md");
    ui.inputs.push("first version");
    const created = await push(ui);
    expect(created).toMatchObject({ name: "sync/summary", action: "created", version: 1, labels: ["staging"] });
    expect(ui.prompts[0]).toBe("Commit message for sync/summary v1 (a new prompt)");
    expect(ui.infos.at(-1)).toBe("PromptOps: created sync/summary v1 (labels: staging)");
    let versions = await versionsOf("sync/summary");
    expect(versions.map((v) => [v.version, v.commitMessage, v.labels.filter((l) => l !== "latest")])).toEqual([[1, "first version", ["staging"]]]);
    // The server hashes what the extension hashes.
    expect(versions[0].contentHash).toBe(contentHash(parsePromptFile(SUMMARY)));

    // Unchanged: nothing is asked, nothing is written.
    const again = new FakeUi(server.url);
    again.openEditor(SUMMARY, "", "promptmd", "/ws/sync/summary.prompt.md");
    expect(await push(again)).toMatchObject({ action: "unchanged", version: 1 });
    expect(again.prompts).toEqual([]);
    expect(again.infos.at(-1)).toContain("unchanged");

    // An edit: a new version; the file's commitMessage is the suggested message; staging moves to v2.
    const edited = SUMMARY.replace("labels: [staging]", "labels: [staging]\ncommitMessage: shorter").replace("in a {{ tone }} tone", "in one line, {{ tone }} tone");
    ui.openEditor(edited, "", "promptmd", "/ws/sync/summary.prompt.md");
    ui.inputs.push("one line");
    const pushed = await push(ui);
    expect(pushed).toMatchObject({ action: "versionCreated", version: 2, labels: ["staging"] });
    expect(ui.infos.at(-1)).toBe("PromptOps: pushed sync/summary v2 (labels: staging)");
    versions = await versionsOf("sync/summary");
    expect(versions.map((v) => v.version)).toEqual([2, 1]);
    expect(versions[0].labels).toContain("staging");
    expect(versions[1].labels).not.toContain("staging");
    expect(versions[0].commitMessage).toBe("one line");

    // Only the description changed: the prompt is updated, no version, no question.
    const described = edited.replace("Summarise a support ticket", "Summarise a ticket");
    const third = new FakeUi(server.url);
    third.openEditor(described, "", "promptmd", "/ws/sync/summary.prompt.md");
    expect(await push(third)).toMatchObject({ action: "updated", version: 2, changed: ["description"] });
    expect(third.prompts).toEqual([]);
    expect((await adminApi(server.url, "GET", "/api/v1/prompts/sync/summary")) as { prompt: { description: string } }).toMatchObject({
      prompt: { description: "Summarise a ticket" },
    });
  });

  test("lint warnings of the new version are shown; cancelling the commit message pushes nothing", async () => {
    const file = "---\nname: sync/undeclared\nmodelConfig: {provider: echo, model: echo}\n---\nHello {{ who }}\n";
    const cancelled = new FakeUi(server.url);
    cancelled.openEditor(file, "", "promptmd", "/ws/undeclared.prompt.md");
    cancelled.inputs.push(undefined);
    expect(await push(cancelled)).toBeUndefined();
    await expect(adminApi(server.url, "GET", "/api/v1/prompts/sync/undeclared")).rejects.toThrow(/404/);

    const ui = new FakeUi(server.url);
    ui.openEditor(file, "", "promptmd", "/ws/undeclared.prompt.md");
    ui.inputs.push("");
    const out = await push(ui);
    expect(out!.warnings.length).toBeGreaterThan(0);
    expect(ui.infos.at(-1)).toMatch(/created sync\/undeclared v1 · \d+ lint warning\(s\): .*who/);
  });

  test("clear errors: no prompt file open, a broken file, a key without prompt:write (403), server down", async () => {
    const ui = new FakeUi(server.url);
    ui.openEditor("print(1)", "", "python", "/ws/app.py");
    expect(await push(ui)).toBeUndefined();
    expect(ui.errors).toEqual(["PromptOps: open a .prompt.md file to push it."]);

    ui.openEditor("---\nname: x\ncolour: red\n---\n", "", "promptmd", "/ws/broken.prompt.md");
    await expect(push(ui)).rejects.toThrow("PromptOps: broken.prompt.md: unknown front matter keys: colour");

    const viewer = new FakeUi(server.url, await keyWithRole(server.url, "QAAnalyst"));
    viewer.openEditor(SUMMARY.replace("sync/summary", "sync/denied"), "", "promptmd", "/ws/denied.prompt.md");
    const denied = (await push(viewer).catch((e: unknown) => e)) as PromptOpsError;
    expect(denied).toBeInstanceOf(PromptOpsError);
    expect(denied.status).toBe(403);
    expect(denied.message).toMatch(/^Cannot push sync\/denied: Your API key lacks a permission for this \(403: .*prompt:write/);
    expect(viewer.prompts).toEqual([]); // refused at the dry run, before any question

    const down = new FakeUi(`http://127.0.0.1:${await freePort()}`);
    down.openEditor(SUMMARY, "", "promptmd", "/ws/summary.prompt.md");
    await expect(push(down)).rejects.toThrow(/^Cannot push sync\/summary: Cannot reach the PromptOps server at http:\/\/127\.0\.0\.1:\d+/);
  });
});

describe("PromptOps: Pull", () => {
  test("a label into <workspace>/<name>.prompt.md in the CLI's format; the CLI pushes it back unchanged", async () => {
    const root = workspace();
    const ui = new FakeUi(server.url, ADMIN_KEY, root);
    ui.picks.push("sync/summary", "sync/summary@staging");
    const out = await pull(ui);
    const path = join(root, "sync", "summary.prompt.md");
    expect(out).toMatchObject({ ref: "sync/summary@staging", version: 2, target: path, written: true });
    const text = readFileSync(path, "utf8");
    expect(text).toBe(out!.text);
    expect(text.startsWith("---\nname: sync/summary\ndescription: Summarise a ticket\ntags:\n- billing\n- support\nkind: text\nvariables:\n")).toBe(true);
    expect(text.endsWith("---\nSummarise this ticket in one line, {{ tone }} tone:\n{{ ticket }}\n")).toBe(true);
    expect(ui.opened).toEqual([path]);
    // The labels offered: every label and every version.
    expect(ui.pickedFrom[1].items.map((i) => i.label)).toEqual(["sync/summary@staging", "sync/summary@2", "sync/summary@1"]);

    // The Python CLI reads the file as the same content (and the same description and tags).
    expect(cli(["prompts", "push", path], root)).toEqual([{ file: path, name: "sync/summary", action: "unchanged", version: 2 }]);
    // ... and the extension reads what the CLI writes as in sync.
    cli(["prompts", "pull", "sync/summary", "--version", "1", "--dir", join(root, "cli")], root);
    const fromCli = readFileSync(join(root, "cli", "sync", "summary.prompt.md"), "utf8");
    expect(fileStatus(parsePromptFile(fromCli), await versionsOf("sync/summary"))).toMatchObject({ state: "inSync", version: 1 });
    expect(parsePromptFile(fromCli)).toEqual(parsePromptFile(dumpPromptFile(
      { name: "sync/summary", description: "Summarise a ticket", tags: ["billing", "support"] },
      (await versionsOf("sync/summary")).find((v) => v.version === 1)!,
    )));
  });

  test("a different existing file is only overwritten when confirmed; the open file of the prompt is replaced", async () => {
    const root = workspace();
    const path = join(root, "sync", "summary.prompt.md");
    const ui = new FakeUi(server.url, ADMIN_KEY, root);
    await ui.writeFile(path, "---\nname: sync/summary\n---\nmy local edit\n");
    ui.picks.push("sync/summary", "sync/summary@1", "Cancel");
    expect(await pull(ui)).toMatchObject({ written: false });
    expect(readFileSync(path, "utf8")).toBe("---\nname: sync/summary\n---\nmy local edit\n");
    expect(ui.pickedFrom[2].title).toBe("PromptOps: sync/summary.prompt.md differs from sync/summary v1");

    ui.picks.push("sync/summary", "sync/summary@1", "Overwrite");
    expect(await pull(ui)).toMatchObject({ written: true, version: 1 });
    expect(readFileSync(path, "utf8")).toContain("Summarise this ticket in a {{ tone }} tone:");

    // The open editor names this prompt: pull replaces its text (the open file's prompt is offered first).
    ui.openEditor("---\nname: sync/summary\n---\nstale\n", "", "promptmd", "/elsewhere/summary.prompt.md");
    ui.picks.push((items) => items[0], "sync/summary@staging");
    const out = await pull(ui);
    expect(ui.pickedFrom.at(-2)!.items[0]).toMatchObject({ label: "sync/summary", description: expect.stringMatching(/^this file · v2/) });
    expect(out).toMatchObject({ target: "/elsewhere/summary.prompt.md", version: 2, written: true });
    expect(ui.editorText!.document).toBe(out!.text);

    // No folder open: an untitled editor.
    const bare = new FakeUi(server.url);
    bare.picks.push("sync/summary", "sync/summary@2");
    expect(await pull(bare)).toMatchObject({ target: "untitled" });
    expect(bare.untitled[0].languageId).toBe("promptmd");
  });

  test("from a tree node (project -> prompt -> label) without questions", async () => {
    const [project] = await treeChildren(api);
    expect(project.kind).toBe("project");
    const promptNode = (await treeChildren(api, project)).find((n) => n.name === "sync/summary")!;
    const children = await treeChildren(api, promptNode);
    expect(children.map((c) => c.label)).toEqual(["@staging", "v2", "v1"]);
    const ui = new FakeUi(server.url, ADMIN_KEY, workspace());
    const out = (await HANDLERS["promptops.pull"](ui, children[0])) as { version: number };
    expect(out.version).toBe(2);
    expect(ui.pickedFrom).toEqual([]);
  });
});

describe("registry status (CodeLens)", () => {
  test("in sync with a version and its labels / changed since the newest / not in the registry / invalid", async () => {
    const pulled = dumpPromptFile(
      { name: "sync/summary", description: "Summarise a ticket", tags: ["billing", "support"] },
      (await versionsOf("sync/summary"))[0],
    );
    await adminApi(server.url, "PUT", "/api/v1/prompts/sync/summary/labels/production", { version: 2 });
    const file = "/ws/summary.prompt.md";
    const inSync = await registryStatus(api, pulled, file);
    expect(inSync).toMatchObject({ state: "inSync", version: 2, labels: ["production", "staging"], text: "in sync with v2 (production, staging)" });
    expect(statusLenses(inSync).map((l) => [l.title, l.command])).toEqual([
      ["$(check) PromptOps: in sync with v2 (production, staging)", ""],
      ["Pull…", "promptops.pull"],
    ]);

    // Formatting, front-matter order, labels, commit message and metadata do not count; content does.
    const reformatted = "---\nname: sync/summary\nlabels: [whatever]\ncommitMessage: x\nmetadata: {a: 1}\nmodelConfig:\n  model: echo\n  provider: echo\nvariables:\n- name: ticket\n  description: The ticket text\n- {name: tone, required: false, default: neutral, type: string}\n---\nSummarise this ticket in one line, {{ tone }} tone:\n{{ ticket }}\n";
    expect(await registryStatus(api, reformatted, file)).toMatchObject({ state: "inSync", version: 2 });
    const older = reformatted.replace("in one line, {{ tone }} tone", "in a {{ tone }} tone");
    expect(await registryStatus(api, older, file)).toMatchObject({ state: "inSync", version: 1, text: "in sync with v1 · v2 is newer" });

    const changed = await registryStatus(api, pulled.replace("{{ ticket }}", "Ticket: {{ ticket }}"), file);
    expect(changed).toMatchObject({ state: "changed", latest: 2, text: "changed since v2 (production, staging)" });
    expect(statusLenses(changed).map((l) => l.command)).toEqual(["", "promptops.push", "promptops.pull"]);
    expect(statusLenses(changed)[1].title).toBe("Push as v3");
    const model = await registryStatus(api, pulled.replace("model: echo", "model: echo-2"), file);
    expect(model.state).toBe("changed");

    const missing = await registryStatus(api, "---\nname: sync/nowhere\n---\nHi\n", file);
    expect(missing).toMatchObject({ state: "missing", text: "not in the registry" });
    expect(statusLenses(missing)[1].command).toBe("promptops.push");
    expect(await registryStatus(api, "no front matter", file)).toMatchObject({ state: "invalid", text: "summary.prompt.md: a prompt file starts with '---' and YAML front matter" });
    expect(statusLenses({ state: "error", text: "no key", needsKey: true })[0].command).toBe("promptops.setApiKey");
  });

  test("a chat prompt's status; the cache answers until it is cleared", async () => {
    const chat = "---\nname: sync/chat\nmessages:\n- {role: system, content: You are terse.}\n- {role: user, content: '{{ question }}'}\nvariables: [{name: question}]\nmodelConfig: {provider: echo, model: echo, params: {temperature: 0.5}}\n---\n";
    const ui = new FakeUi(server.url);
    ui.openEditor(chat, "", "promptmd", "/ws/chat.prompt.md");
    ui.inputs.push("chat");
    await push(ui);
    const [v1] = await versionsOf("sync/chat");
    expect(v1.contentHash).toBe(contentHash(parsePromptFile(chat)));

    const cache = new VersionCache(60_000);
    expect(await registryStatus(api, chat, "chat.prompt.md", cache)).toMatchObject({ state: "inSync", version: 1, text: "in sync with v1 (latest)" });
    const edited = chat.replace("You are terse.", "You are very terse.");
    ui.openEditor(edited, "", "promptmd", "/ws/chat.prompt.md");
    ui.inputs.push("terser");
    await push(ui);
    expect(await registryStatus(api, edited, "chat.prompt.md", cache)).toMatchObject({ state: "changed", latest: 1 }); // cached
    cache.clear();
    expect(await registryStatus(api, edited, "chat.prompt.md", cache)).toMatchObject({ state: "inSync", version: 2 });
  });
});

describe("variable completion inside {{ }}", () => {
  const doc = "---\nname: x\nvariables:\n  - {name: ticket, type: string, description: The ticket}\n  - {name: tone, required: false, default: neutral}\n---\n{% for item in items %}{{ item.title | upper }}{% endfor %}\n{{ customer.name }} {{ t";

  test("declared variables first (type, required, default, description), then the ones the file uses", () => {
    const all = variableCompletions(doc.replace(/\{\{ t$/, "{{ "), doc.length - 1)!;
    expect(all.map((c) => [c.name, c.origin])).toEqual([
      ["ticket", "declared"],
      ["tone", "declared"],
      ["items", "used"],
      ["customer", "used"],
    ]);
    expect(all[0]).toMatchObject({ detail: "string, required", documentation: "The ticket" });
    expect(all[1].detail).toBe('string, optional, default "neutral"');
    expect(variableCompletions(doc, doc.length)!.map((c) => c.name)).toEqual(["ticket", "tone"]);
  });

  test("only inside an open tag, not after '.' or '|', and with a broken front matter too", () => {
    expect(openTagPrefix("Hello {{ na", 11)).toBe("na");
    expect(openTagPrefix("{% if fla", 9)).toBe("fla");
    expect(openTagPrefix("{{ a }} b", 9)).toBeUndefined();
    expect(openTagPrefix("{{ a.b", 6)).toBeUndefined();
    expect(openTagPrefix("{{ a | up", 9)).toBeUndefined();
    expect(openTagPrefix("{{ a\nb", 6)).toBeUndefined();
    expect(variableCompletions("plain text", 5)).toBeUndefined();
    const broken = "---\nname: [x\n---\n{{ who }} {{ ";
    expect(variableCompletions(broken, broken.length)!.map((c) => c.name)).toEqual(["who"]);
    expect(templateVariables("{% set n = count %}{{ n }}{{ x | default('a') }}{{ f(size=3) }}{% include 'other@prod' %}")).toEqual(["count", "x", "f"]);
  });
});

describe("PromptOps: Search prompts", () => {
  beforeAll(async () => {
    for (const [name, tags, description] of [
      ["search/refund-reply", ["payments", "support"], "Answer a refund request"],
      ["search/invoice-summary", ["payments"], "Summarise an invoice"],
      ["search/greeting", ["marketing"], "Greet a new customer"],
    ] as const) {
      await adminApi(server.url, "POST", "/api/v1/prompts", { name, tags, description, template: `${description}: {{ input }}`, variables: [{ name: "input" }], modelConfig: ECHO });
    }
    await adminApi(server.url, "PUT", "/api/v1/prompts/search/refund-reply/labels/production", { version: 1 });
  });

  test("words, tag: and label: become the list filters", () => {
    expect(parseSearch("  refund  tag:billing label:production prefix:search/ reply ")).toEqual({ q: "refund reply", tag: "billing", label: "production", prefix: "search/" });
    expect(parseSearch("")).toEqual({});
  });

  test("tag filter -> pick -> insert the reference; text -> insert as code; open; pull", async () => {
    const ui = new FakeUi(server.url, ADMIN_KEY, workspace());
    ui.openEditor("", "", "python");
    ui.inputs.push("tag:payments");
    ui.picks.push("search/refund-reply", "Insert reference", "search/refund-reply@production");
    const found = await search(ui);
    expect(found!.matches.sort()).toEqual(["search/invoice-summary", "search/refund-reply"]);
    expect(found).toMatchObject({ action: "reference", ref: "search/refund-reply@production", result: "search/refund-reply@production" });
    expect(ui.editorText!.document).toBe("search/refund-reply@production");
    expect(ui.pickedFrom[0].items.find((i) => i.label === "search/refund-reply")!.detail).toBe("#payments #support  Answer a refund request");

    ui.openEditor("", "", "typescript", "/ws/a.ts");
    ui.inputs.push("invoice");
    ui.picks.push("search/invoice-summary", "Insert as code"); // one version, no label: no third question
    const code = await search(ui);
    expect(code!.matches).toEqual(["search/invoice-summary"]);
    expect(code!.result).toBe('const prompt = await po.getPrompt("search/invoice-summary", { version: 1 }); // po = new PromptOps() from "@promptops/sdk/node"\n');

    ui.inputs.push("greet tag:marketing");
    ui.picks.push("search/greeting", "Open as .prompt.md");
    const opened = await search(ui);
    expect(opened!.result).toMatch(/^---\nname: search\/greeting\ndescription: Greet a new customer\ntags:\n- marketing\nkind: text\n/);
    expect(ui.untitled.at(-1)).toEqual({ text: opened!.result, languageId: "promptmd" });

    ui.inputs.push("label:production");
    ui.picks.push("search/refund-reply", "Pull into the workspace", "search/refund-reply@production");
    const pulled = await search(ui);
    expect(pulled!.matches.every((n) => n !== "search/greeting")).toBe(true);
    expect(readFileSync(join(ui.root!, "search", "refund-reply.prompt.md"), "utf8")).toContain("Answer a refund request: {{ input }}");

    ui.inputs.push("nothing-matches-this");
    expect(await search(ui)).toMatchObject({ matches: [] });
    expect(ui.infos.at(-1)).toBe('PromptOps: no prompt matches "nothing-matches-this".');
  });
});

describe("round trip through disk", () => {
  test("pull -> edit -> push from the opened file creates the next version", async () => {
    const root = workspace();
    const ui = new FakeUi(server.url, ADMIN_KEY, root);
    ui.picks.push("search/greeting", "search/greeting@1");
    await pull(ui);
    const path = join(root, "search", "greeting.prompt.md");
    writeFileSync(path, readFileSync(path, "utf8").replace("Greet a new customer: {{ input }}", "Greet {{ input }} warmly"));
    await ui.openFile(path);
    ui.inputs.push("warmer");
    expect(await push(ui)).toMatchObject({ action: "versionCreated", version: 2 });
    expect((await adminApi(server.url, "GET", `${promptPath("search/greeting")}`)) as { version: { template: string } }).toMatchObject({
      version: { template: "Greet {{ input }} warmly" },
    });
  });
});
