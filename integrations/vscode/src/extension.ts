// Wires the real `vscode` API to the facade the command modules take; no logic of its own beyond that.
import * as vscode from "vscode";
import { Api, KEY_SECRET } from "./client.js";
import { HANDLERS } from "./commands/index.js";
import { registryStatus, statusLenses, VersionCache } from "./commands/sync.js";
import type { Ui } from "./facade.js";
import { lintPromptFile } from "./lint.js";
import { variableCompletions } from "./promptfile.js";
import { treeChildren, type TreeNode } from "./registry.js";

function serverUrl(): string {
  return vscode.workspace.getConfiguration("promptops").get<string>("serverUrl") ?? "http://127.0.0.1:8000";
}

function facade(context: vscode.ExtensionContext): Ui {
  return {
    showInputBox: (options) => Promise.resolve(vscode.window.showInputBox({ ...options, ignoreFocusOut: true })),
    showQuickPick: (items, options) =>
      Promise.resolve(vscode.window.showQuickPick(items, { ...options, matchOnDescription: true, matchOnDetail: true, ignoreFocusOut: true })),
    showInfo: (message) => void vscode.window.showInformationMessage(message),
    showError: (message) => void vscode.window.showErrorMessage(message),
    editor: () => {
      const editor = vscode.window.activeTextEditor;
      if (!editor) return undefined;
      return {
        selection: editor.document.getText(editor.selection),
        document: editor.document.getText(),
        languageId: editor.document.languageId,
        fileName: editor.document.fileName,
      };
    },
    replaceSelection: async (text) => {
      const editor = vscode.window.activeTextEditor;
      return editor ? editor.edit((edit) => edit.replace(editor.selection, text)) : false;
    },
    replaceDocument: async (text) => {
      const editor = vscode.window.activeTextEditor;
      if (!editor) return false;
      const doc = editor.document;
      const all = new vscode.Range(doc.positionAt(0), doc.positionAt(doc.getText().length));
      return editor.edit((edit) => edit.replace(all, text));
    },
    showDiff: async (title, left, right) => {
      const a = await vscode.workspace.openTextDocument({ content: left, language: "promptmd" });
      const b = await vscode.workspace.openTextDocument({ content: right, language: "promptmd" });
      await vscode.commands.executeCommand("vscode.diff", a.uri, b.uri, title, { preview: true });
    },
    showHtml: (title, html) => {
      const panel = vscode.window.createWebviewPanel("promptops.results", title, vscode.ViewColumn.Beside, { enableScripts: false });
      panel.webview.html = html;
    },
    secrets: {
      get: (key) => Promise.resolve(context.secrets.get(key)),
      store: (key, value) => Promise.resolve(context.secrets.store(key, value)),
      delete: (key) => Promise.resolve(context.secrets.delete(key)),
    },
    serverUrl,
    workspaceRoot: () => vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    readFile: async (path) => {
      try {
        return new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.file(path)));
      } catch {
        return undefined;
      }
    },
    writeFile: async (path, text) => {
      const uri = vscode.Uri.file(path);
      await vscode.workspace.fs.createDirectory(vscode.Uri.joinPath(uri, ".."));
      await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(text));
    },
    openFile: async (path) => {
      await vscode.window.showTextDocument(vscode.Uri.file(path), { preview: false });
    },
    openText: async (text, languageId) => {
      await vscode.window.showTextDocument(await vscode.workspace.openTextDocument({ content: text, language: languageId }));
    },
  };
}

async function currentApi(ui: Ui): Promise<Api | undefined> {
  const key = await ui.secrets.get(KEY_SECRET);
  return key ? new Api(serverUrl().trim().replace(/\/+$/, ""), key) : undefined;
}

class PromptsTree implements vscode.TreeDataProvider<TreeNode> {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly ui: Ui) {}

  refresh(): void {
    this.changed.fire(undefined);
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    const state = node.kind === "project" ? vscode.TreeItemCollapsibleState.Expanded : node.expandable ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None;
    const item = new vscode.TreeItem(node.label, state);
    item.iconPath = new vscode.ThemeIcon({ project: "project", prompt: "symbol-file", label: "tag", version: "versions" }[node.kind]);
    item.description = node.description;
    item.tooltip = node.tooltip ?? node.ref;
    item.contextValue = node.kind;
    return item;
  }

  async getChildren(node?: TreeNode): Promise<TreeNode[]> {
    const api = await currentApi(this.ui);
    if (!api) return [];
    try {
      return await treeChildren(api, node);
    } catch (error) {
      this.ui.showError(error instanceof Error ? error.message : String(error));
      return [];
    }
  }
}

const SEVERITY = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  info: vscode.DiagnosticSeverity.Information,
};

/** Lint diagnostics of `.prompt.md` files (on open and save), from the server's lint endpoint. */
function watchPromptFiles(context: vscode.ExtensionContext, ui: Ui): void {
  const diagnostics = vscode.languages.createDiagnosticCollection("promptops");
  context.subscriptions.push(diagnostics);
  const lint = async (doc: vscode.TextDocument) => {
    if (doc.languageId !== "promptmd") return;
    const api = await currentApi(ui);
    if (!api) return;
    try {
      const found = await lintPromptFile(api, doc.getText());
      diagnostics.set(
        doc.uri,
        found.map((d) => {
          const item = new vscode.Diagnostic(doc.lineAt(d.line).range, d.message, SEVERITY[d.severity]);
          item.source = "PromptOps";
          item.code = d.code;
          return item;
        }),
      );
    } catch {
      diagnostics.delete(doc.uri); // server down or no permission: no stale findings
    }
  };
  context.subscriptions.push(
    vscode.workspace.onDidOpenTextDocument(lint),
    vscode.workspace.onDidSaveTextDocument(lint),
    vscode.workspace.onDidCloseTextDocument((doc) => diagnostics.delete(doc.uri)),
  );
  vscode.workspace.textDocuments.forEach((doc) => void lint(doc));
}

/** The registry status of `.prompt.md` files as CodeLenses on their first line (logic in commands/sync.ts). */
class StatusLenses implements vscode.CodeLensProvider {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.changed.event;
  readonly cache = new VersionCache();

  constructor(private readonly ui: Ui) {}

  refresh(): void {
    this.cache.clear();
    this.changed.fire();
  }

  async provideCodeLenses(doc: vscode.TextDocument): Promise<vscode.CodeLens[]> {
    const api = await currentApi(this.ui);
    let lenses;
    if (!api) {
      lenses = statusLenses({ state: "error", text: 'No API key: run "PromptOps: Set API key".', needsKey: true });
    } else {
      try {
        lenses = statusLenses(await registryStatus(api, doc.getText(), doc.fileName, this.cache));
      } catch (error) {
        lenses = statusLenses({ state: "error", text: error instanceof Error ? error.message : String(error) });
      }
    }
    const top = new vscode.Range(0, 0, 0, 0);
    return lenses.map((lens) => new vscode.CodeLens(top, { title: lens.title, command: lens.command, tooltip: lens.tooltip }));
  }
}

/** Variable names inside `{{ }}` / `{% %}` of `.prompt.md` files (logic in promptfile.ts). */
const variableCompletion: vscode.CompletionItemProvider = {
  provideCompletionItems(doc, position) {
    const found = variableCompletions(doc.getText(), doc.offsetAt(position));
    if (!found) return undefined;
    return found.map((v, i) => {
      const item = new vscode.CompletionItem(v.name, v.origin === "declared" ? vscode.CompletionItemKind.Variable : vscode.CompletionItemKind.Text);
      item.detail = v.detail;
      if (v.documentation) item.documentation = v.documentation;
      item.sortText = `${v.origin === "declared" ? 0 : 1}${String(i).padStart(4, "0")}`;
      return item;
    });
  },
};

const REFRESHES_TREE = new Set(["promptops.setApiKey", "promptops.clearApiKey", "promptops.push", "promptops.pull", "promptops.search"]);

export function activate(context: vscode.ExtensionContext): void {
  const ui = facade(context);
  watchPromptFiles(context, ui);
  const tree = new PromptsTree(ui);
  const lenses = new StatusLenses(ui);
  const promptFiles = { language: "promptmd" };
  context.subscriptions.push(
    vscode.window.registerTreeDataProvider("promptops.prompts", tree),
    vscode.languages.registerCodeLensProvider(promptFiles, lenses),
    vscode.languages.registerCompletionItemProvider(promptFiles, variableCompletion, "{", " ", "%"),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("promptops.serverUrl")) {
        tree.refresh();
        lenses.refresh();
      }
    }),
  );
  for (const [id, handler] of Object.entries(HANDLERS)) {
    context.subscriptions.push(
      // From the Explorer's context menu the argument is the file's Uri: open it, then run on that editor.
      vscode.commands.registerCommand(id, async (arg?: TreeNode | vscode.Uri) => {
        try {
          if (id === "promptops.refreshPrompts") {
            lenses.refresh();
            return tree.refresh();
          }
          let node: TreeNode | undefined;
          if (arg instanceof vscode.Uri) await vscode.window.showTextDocument(arg);
          else node = arg;
          await handler(ui, node);
          if (REFRESHES_TREE.has(id)) {
            tree.refresh();
            lenses.refresh();
          }
        } catch (error) {
          ui.showError(error instanceof Error ? error.message : String(error));
        }
      }),
    );
  }
}

export function deactivate(): void {}
