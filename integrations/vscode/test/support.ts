// A scripted stand-in for the `vscode` facade (answers queued in order, everything shown recorded) and a real
// `promptops serve` (sdk/typescript/test/server.mjs: a fresh SQLite database, or SDK_TEST_DATABASE_URL).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { ADMIN_KEY, api as adminApi, freePort, startServer } from "../../../sdk/typescript/test/server.mjs";
import { KEY_SECRET } from "../src/client.js";
import type { EditorText, PickItem, Ui } from "../src/facade.js";

export { ADMIN_KEY, adminApi, freePort, startServer };

export const ECHO = { provider: "echo", model: "echo" };

type PickAnswer = string | undefined | ((items: PickItem[]) => PickItem | undefined);

export class FakeUi implements Ui {
  inputs: (string | undefined)[] = [];
  picks: PickAnswer[] = [];
  infos: string[] = [];
  errors: string[] = [];
  diffs: { title: string; left: string; right: string }[] = [];
  panels: { title: string; html: string }[] = [];
  pickedFrom: { title: string; items: PickItem[] }[] = [];
  prompts: string[] = [];
  store = new Map<string, string>();
  editorText: EditorText | undefined;
  url: string;
  /** The workspace folder (pulled files go there); undefined: no folder open. */
  root: string | undefined;
  opened: string[] = [];
  untitled: { text: string; languageId: string }[] = [];

  constructor(url: string, key: string | null = ADMIN_KEY, root?: string) {
    this.url = url;
    this.root = root;
    if (key) this.store.set(KEY_SECRET, key);
  }

  /** An editor with this document, `selection` selected (a substring of it, or "" for none). */
  openEditor(document: string, selection = "", languageId = "python", fileName = "/work/app.py"): void {
    this.editorText = { document, selection, languageId, fileName };
  }

  async showInputBox(options: { prompt: string }): Promise<string | undefined> {
    this.prompts.push(options.prompt);
    if (this.inputs.length === 0) throw new Error(`unexpected input box: ${options.prompt}`);
    return this.inputs.shift();
  }

  async showQuickPick<T extends PickItem>(items: T[], options: { title: string }): Promise<T | undefined> {
    this.pickedFrom.push({ title: options.title, items });
    if (this.picks.length === 0) throw new Error(`unexpected quick pick: ${options.title}`);
    const answer = this.picks.shift();
    if (answer === undefined) return undefined;
    if (typeof answer === "function") return answer(items) as T | undefined;
    const found = items.find((i) => i.label === answer || i.label.startsWith(answer));
    if (!found) throw new Error(`no item ${answer} in ${items.map((i) => i.label).join(", ")}`);
    return found;
  }

  showInfo(message: string): void {
    this.infos.push(message);
  }

  showError(message: string): void {
    this.errors.push(message);
  }

  editor(): EditorText | undefined {
    return this.editorText;
  }

  async replaceSelection(text: string): Promise<boolean> {
    const e = this.editorText;
    if (!e) return false;
    const at = e.selection ? e.document.indexOf(e.selection) : e.document.length;
    e.document = e.document.slice(0, at) + text + e.document.slice(at + e.selection.length);
    e.selection = text;
    return true;
  }

  async replaceDocument(text: string): Promise<boolean> {
    if (!this.editorText) return false;
    this.editorText.document = text;
    return true;
  }

  async showDiff(title: string, left: string, right: string): Promise<void> {
    this.diffs.push({ title, left, right });
  }

  showHtml(title: string, html: string): void {
    this.panels.push({ title, html });
  }

  secrets = {
    get: async (key: string) => this.store.get(key),
    store: async (key: string, value: string) => void this.store.set(key, value),
    delete: async (key: string) => void this.store.delete(key),
  };

  serverUrl(): string {
    return this.url;
  }

  workspaceRoot(): string | undefined {
    return this.root;
  }

  async readFile(path: string): Promise<string | undefined> {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return undefined;
    }
  }

  async writeFile(path: string, text: string): Promise<void> {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  }

  /** Like VS Code: the file becomes the active editor. */
  async openFile(path: string): Promise<void> {
    this.opened.push(path);
    this.openEditor(readFileSync(path, "utf8"), "", "promptmd", path);
  }

  async openText(text: string, languageId: string): Promise<void> {
    this.untitled.push({ text, languageId });
    this.openEditor(text, "", languageId, "Untitled-1");
  }
}

/** A text prompt on the echo model with `production` on v1 (and a v2 with no label when `v2` is given). */
export async function seedPrompt(url: string, name: string, template: string, v2?: string): Promise<void> {
  await adminApi(url, "POST", "/api/v1/prompts", { name, template, variables: [{ name: "input" }], modelConfig: ECHO });
  await adminApi(url, "PUT", `/api/v1/prompts/${name}/labels/production`, { version: 1 });
  if (v2) await adminApi(url, "POST", `/api/v1/prompts/${name}/versions`, { template: v2, variables: [{ name: "input" }], modelConfig: ECHO });
}

/** A key of another role in the bootstrap project (e.g. Viewer, for 403s). */
export async function keyWithRole(url: string, role: string): Promise<string> {
  const created = (await adminApi(url, "POST", "/api/v1/api-keys", { name: `vscode-${role}`, role })) as { key: string };
  return created.key;
}
