// Wires the real `vscode` API to the facade the command modules take; no logic of its own beyond that.
import * as vscode from "vscode";
import { Api, KEY_SECRET } from "./client.js";
import { HANDLERS } from "./commands/index.js";
import type { Ui } from "./facade.js";
import { lintPromptFile } from "./lint.js";
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
  };
}

class PromptsTree implements vscode.TreeDataProvider<TreeNode> {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly ui: Ui) {}

  refresh(): void {
    this.changed.fire(undefined);
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    const item = new vscode.TreeItem(node.label, node.expandable ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    item.description = node.description;
    item.tooltip = node.tooltip ?? node.ref;
    item.contextValue = node.kind;
    return item;
  }

  async getChildren(node?: TreeNode): Promise<TreeNode[]> {
    const key = await this.ui.secrets.get(KEY_SECRET);
    if (!key) return [];
    try {
      return await treeChildren(new Api(serverUrl().replace(/\/+$/, ""), key), node);
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
    const key = await ui.secrets.get(KEY_SECRET);
    if (!key) return;
    try {
      const found = await lintPromptFile(new Api(serverUrl().replace(/\/+$/, ""), key), doc.getText());
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

export function activate(context: vscode.ExtensionContext): void {
  const ui = facade(context);
  watchPromptFiles(context, ui);
  const tree = new PromptsTree(ui);
  context.subscriptions.push(vscode.window.registerTreeDataProvider("promptops.prompts", tree));
  for (const [id, handler] of Object.entries(HANDLERS)) {
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (node?: TreeNode) => {
        try {
          if (id === "promptops.refreshPrompts") return tree.refresh();
          await handler(ui, node);
          if (id === "promptops.setApiKey" || id === "promptops.clearApiKey") tree.refresh();
        } catch (error) {
          ui.showError(error instanceof Error ? error.message : String(error));
        }
      }),
    );
  }
}

export function deactivate(): void {}
