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

/** Loads the built bundle with a recording stand-in for the `vscode` module and runs activate(). */
function registeredByBundle(): { commands: string[]; views: string[] } {
  const commands: string[] = [];
  const views: string[] = [];
  const disposable = { dispose() {} };
  class EventEmitter {
    event = () => disposable;
    fire() {}
  }
  const vscode = {
    commands: { registerCommand: (id: string) => (commands.push(id), disposable), executeCommand: async () => undefined },
    window: { registerTreeDataProvider: (id: string) => (views.push(id), disposable) },
    workspace: {
      getConfiguration: () => ({ get: () => undefined }),
      onDidOpenTextDocument: () => disposable,
      onDidSaveTextDocument: () => disposable,
      onDidCloseTextDocument: () => disposable,
      textDocuments: [],
    },
    languages: { createDiagnosticCollection: () => ({ ...disposable, set() {}, delete() {} }) },
    DiagnosticSeverity: { Error: 0, Warning: 1, Information: 2 },
    EventEmitter,
  };
  const loader = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
  const original = loader._load;
  loader._load = (request: string, ...rest: unknown[]) => (request === "vscode" ? vscode : original(request, ...rest));
  try {
    const bundle = join(ROOT, "dist", "extension.js");
    const require = createRequire(bundle);
    delete require.cache[bundle];
    const extension = require(bundle) as { activate: (context: unknown) => void };
    extension.activate({ subscriptions: [], secrets: {} });
  } finally {
    loader._load = original;
  }
  return { commands, views };
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

  test("activation events name known languages; settings hold no secret", () => {
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
    for (const file of ["extension/package.json", "extension/dist/extension.js", "extension/snippets/python.json", "extension/snippets/typescript.json", "extension/syntaxes/promptmd.tmLanguage.json", "extension/readme.md"]) {
      expect(listing).toContain(file);
    }
    expect(listing.some((f) => f.startsWith("extension/src/") || f.includes("node_modules"))).toBe(false);
  });
});
