// The manifest against the code: contributed commands = the handlers the bundle registers, activation events,
// snippets and grammar files parse, and `vsce package` produces promptops-<version>.vsix with the right files.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { createRequire, Module } from "node:module";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { HANDLERS } from "../src/commands/index.js";

const ROOT = join(__dirname, "..");
const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const contributed: { command: string; title: string }[] = manifest.contributes.commands;

function json(path: string): any {
  return JSON.parse(readFileSync(join(ROOT, path), "utf8"));
}

interface Registered {
  commands: string[];
  views: string[];
  codeLenses: { selector: unknown; provider: any }[];
  completions: { selector: unknown; provider: any; triggers: string[] }[];
}

/** Loads the built bundle with a recording stand-in for the `vscode` module and runs activate(). */
function registeredByBundle(): Registered {
  const registered: Registered = { commands: [], views: [], codeLenses: [], completions: [] };
  const disposable = { dispose() {} };
  class EventEmitter {
    event = () => disposable;
    fire() {}
  }
  class Range {
    constructor(...args: number[]) {
      Object.assign(this, { args });
    }
  }
  class CodeLens {
    constructor(
      readonly range: Range,
      readonly command: { title: string; command: string; tooltip?: string },
    ) {}
  }
  class CompletionItem {
    detail?: string;
    documentation?: string;
    sortText?: string;
    constructor(
      readonly label: string,
      readonly kind: number,
    ) {}
  }
  class Uri {}
  const vscode = {
    commands: { registerCommand: (id: string) => (registered.commands.push(id), disposable), executeCommand: async () => undefined },
    window: { registerTreeDataProvider: (id: string) => (registered.views.push(id), disposable) },
    workspace: {
      getConfiguration: () => ({ get: () => undefined }),
      onDidOpenTextDocument: () => disposable,
      onDidSaveTextDocument: () => disposable,
      onDidCloseTextDocument: () => disposable,
      onDidChangeConfiguration: () => disposable,
      textDocuments: [],
    },
    languages: {
      createDiagnosticCollection: () => ({ ...disposable, set() {}, delete() {} }),
      registerCodeLensProvider: (selector: unknown, provider: unknown) => (registered.codeLenses.push({ selector, provider }), disposable),
      registerCompletionItemProvider: (selector: unknown, provider: unknown, ...triggers: string[]) => (
        registered.completions.push({ selector, provider, triggers }), disposable
      ),
    },
    DiagnosticSeverity: { Error: 0, Warning: 1, Information: 2 },
    CompletionItemKind: { Text: 0, Variable: 5 },
    EventEmitter,
    Range,
    CodeLens,
    CompletionItem,
    Uri,
  };
  const loader = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
  const original = loader._load;
  loader._load = (request: string, ...rest: unknown[]) => (request === "vscode" ? vscode : original(request, ...rest));
  try {
    const bundle = join(ROOT, "dist", "extension.js");
    const require = createRequire(bundle);
    delete require.cache[bundle];
    const extension = require(bundle) as { activate: (context: unknown) => void };
    extension.activate({ subscriptions: [], secrets: { get: async () => undefined } });
  } finally {
    loader._load = original;
  }
  return registered;
}

/** A stand-in TextDocument of this text. */
function doc(text: string) {
  return { getText: () => text, fileName: "/ws/x.prompt.md", offsetAt: (p: { offset: number }) => p.offset, languageId: "promptmd" };
}

describe("manifest", () => {
  test("contributed commands are exactly the handlers, with the documented titles", () => {
    expect(contributed.map((c) => c.command).sort()).toEqual(Object.keys(HANDLERS).sort());
    const titles = Object.fromEntries(contributed.map((c) => [c.command, c.title]));
    expect(titles["promptops.generate"]).toBe("PromptOpt: Generate");
    expect(titles["promptops.evaluate"]).toBe("PromptOpt: Evaluate");
    expect(titles["promptops.refine"]).toBe("PromptOpt: Refine");
    expect(titles["promptops.setApiKey"]).toBe("PromptOps: Set API key");
  });

  test("the built bundle registers every contributed command and the Prompts view", () => {
    execFileSync("node", ["scripts/build.mjs"], { cwd: ROOT });
    const { commands, views } = registeredByBundle();
    expect(commands.sort()).toEqual(contributed.map((c) => c.command).sort());
    expect(views).toEqual(manifest.contributes.views.explorer.map((v: { id: string }) => v.id));
    for (const menu of Object.values(manifest.contributes.menus) as { command: string }[][]) {
      for (const item of menu) expect(commands).toContain(item.command);
    }
  });

  test("menus: push/pull on .prompt.md editors and files, search and refresh on the view, tree items by kind", () => {
    const menus = manifest.contributes.menus as Record<string, { command: string; when?: string }[]>;
    const where = (menu: string, command: string) => menus[menu]?.find((m) => m.command === command)?.when;
    expect(where("editor/title", "promptops.push")).toBe("resourceLangId == promptmd");
    expect(where("editor/context", "promptops.pull")).toBe("resourceLangId == promptmd");
    expect(where("explorer/context", "promptops.push")).toBe("resourceFilename =~ /\\.prompt\\.md$/");
    expect(where("commandPalette", "promptops.push")).toBe("editorLangId == promptmd");
    expect(menus["view/title"].map((m) => m.command)).toEqual(["promptops.search", "promptops.refreshPrompts"]);
    // Tree items are project | prompt | label | version (TreeNode.kind is the contextValue); projects get no item menu.
    for (const item of menus["view/item/context"]) {
      const kinds = /viewItem =~ \/\^\(([a-z|]+)\)\$\//.exec(item.when ?? "")![1].split("|");
      for (const kind of kinds) expect(["prompt", "label", "version"]).toContain(kind);
    }
    expect(where("view/item/context", "promptops.pull")).toContain("prompt|version|label");
    for (const command of ["promptops.push", "promptops.pull", "promptops.search", "promptops.refreshPrompts"]) {
      expect(contributed.find((c) => c.command === command)).toHaveProperty("icon");
    }
    const titles = Object.fromEntries(contributed.map((c) => [c.command, c.title]));
    expect([titles["promptops.push"], titles["promptops.pull"], titles["promptops.search"]]).toEqual([
      "PromptOps: Push to registry",
      "PromptOps: Pull",
      "PromptOps: Search prompts",
    ]);
  });

  test("the bundle's CodeLens and completion providers for .prompt.md", async () => {
    execFileSync("node", ["scripts/build.mjs"], { cwd: ROOT });
    const { codeLenses, completions } = registeredByBundle();
    expect(codeLenses.map((c) => c.selector)).toEqual([{ language: "promptmd" }]);
    // No key stored: the lens says so and runs "Set API key".
    const lenses = await codeLenses[0].provider.provideCodeLenses(doc("---\nname: a\n---\nHi\n"));
    expect(lenses.map((l: { command: { title: string; command: string } }) => [l.command.title, l.command.command])).toEqual([
      ["$(circle-slash) PromptOps: registry status unavailable", "promptops.setApiKey"],
    ]);
    expect(completions).toHaveLength(1);
    expect(completions[0].selector).toEqual({ language: "promptmd" });
    expect(completions[0].triggers).toContain("{");
    const text = "---\nname: a\nvariables: [{name: ticket, description: The ticket}]\n---\n{{ customer }} {{ ";
    const items = completions[0].provider.provideCompletionItems(doc(text), { offset: text.length });
    expect(items.map((i: { label: string; kind: number; detail: string }) => [i.label, i.kind, i.detail])).toEqual([
      ["ticket", 5, "string, required"],
      ["customer", 0, "used in this file (not declared)"],
    ]);
    expect(items[0].documentation).toBe("The ticket");
    expect(completions[0].provider.provideCompletionItems(doc("plain"), { offset: 3 })).toBeUndefined();
  });

  test("activation events name known languages (commands and the view activate it by themselves); settings hold no secret", () => {
    // VS Code >= 1.74 generates onCommand/onView activation events from contributes.commands and views.
    const [major, minor] = manifest.engines.vscode.replace("^", "").split(".").map(Number);
    expect(major > 1 || minor >= 74).toBe(true);
    expect(manifest.activationEvents).toContain("onLanguage:promptmd");
    const languages = new Set(["python", "typescript", ...manifest.contributes.languages.map((l: { id: string }) => l.id)]);
    for (const event of manifest.activationEvents as string[]) {
      const [kind, arg] = event.split(":");
      expect(kind).toBe("onLanguage");
      expect(languages.has(arg)).toBe(true);
    }
    expect(Object.keys(manifest.contributes.configuration.properties)).toEqual(["promptops.serverUrl"]);
    expect(manifest.engines.vscode).toBe(`^${manifest.devDependencies["@types/vscode"]}`);
  });

  test("snippets promptGen, evalPrompt, refinePrompt parse for Python and TypeScript", () => {
    const endpoints: Record<string, string> = { promptGen: "/api/prompt/generate", evalPrompt: "/api/prompt/evaluate", refinePrompt: "/api/prompt/refine" };
    for (const entry of manifest.contributes.snippets as { language: string; path: string }[]) {
      const snippets = Object.values(json(entry.path)) as { prefix: string; body: string[] }[];
      expect(snippets.map((s) => s.prefix).sort()).toEqual(Object.keys(endpoints).sort());
      for (const s of snippets) expect(s.body.join("\n")).toContain(endpoints[s.prefix]);
    }
    expect(manifest.contributes.snippets.map((s: { language: string }) => s.language).sort()).toEqual(["python", "typescript"]);
  });

  test("the .prompt.md grammar and language configuration parse", () => {
    const grammar = manifest.contributes.grammars[0];
    const parsed = json(grammar.path);
    expect(parsed.scopeName).toBe(grammar.scopeName);
    for (const rule of parsed.repository.template.patterns) new RegExp(rule.begin.replace("\\A", "^"));
    expect(json(manifest.contributes.languages[0].configuration).comments.blockComment).toEqual(["{#", "#}"]);
  });
});

describe("packaging", () => {
  test(`vsce packages promptops-${manifest.version}.vsix with the bundle and no sources`, () => {
    const vsix = join(ROOT, `promptops-${manifest.version}.vsix`);
    rmSync(vsix, { force: true });
    execFileSync("npm", ["run", "--silent", "build"], { cwd: ROOT });
    execFileSync("npm", ["run", "--silent", "package"], { cwd: ROOT, stdio: "pipe" });
    expect(existsSync(vsix)).toBe(true);
    const listing = execFileSync("python3", ["-c", "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))", vsix], {
      encoding: "utf8",
    }).split("\n");
    // The YAML parser is bundled into dist/extension.js (no node_modules in the package).
    expect(execFileSync("grep", ["-c", "yaml-1.1", join(ROOT, "dist", "extension.js")], { encoding: "utf8" }).trim()).not.toBe("0");
    for (const file of ["extension/package.json", "extension/dist/extension.js", "extension/snippets/python.json", "extension/snippets/typescript.json", "extension/syntaxes/promptmd.tmLanguage.json", "extension/readme.md"]) {
      expect(listing).toContain(file);
    }
    expect(listing.some((f) => f.startsWith("extension/src/") || f.includes("node_modules"))).toBe(false);
  });
});
