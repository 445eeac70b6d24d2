// The thin slice of the `vscode` API the commands use. `src/extension.ts` implements it with the real API; the
// tests implement it with scripted answers, so every command runs against a real `promptops serve`.

export interface PickItem {
  label: string;
  description?: string;
  detail?: string;
}

export interface EditorText {
  /** The selected text, or "" when nothing is selected. */
  selection: string;
  /** The whole document (a `.prompt.md` file is used whole when nothing is selected). */
  document: string;
  languageId: string;
  fileName: string;
}

export interface Secrets {
  get(key: string): Promise<string | undefined>;
  store(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
}

export interface Ui {
  showInputBox(options: { prompt: string; placeHolder?: string; value?: string; password?: boolean }): Promise<string | undefined>;
  showQuickPick<T extends PickItem>(items: T[], options: { title: string; placeHolder?: string }): Promise<T | undefined>;
  showInfo(message: string): void;
  showError(message: string): void;
  /** The active editor's text, or undefined when no editor is open. */
  editor(): EditorText | undefined;
  /** Replace the selection (or insert at the cursor when nothing is selected). False when no editor is open. */
  replaceSelection(text: string): Promise<boolean>;
  /** Replace the whole document of the active editor. False when no editor is open. */
  replaceDocument(text: string): Promise<boolean>;
  /** Show `left` and `right` side by side (a diff editor). */
  showDiff(title: string, left: string, right: string): Promise<void>;
  /** Open a webview panel with this HTML. */
  showHtml(title: string, html: string): void;
  secrets: Secrets;
  /** The `promptops.serverUrl` setting. */
  serverUrl(): string;
  /** The folder of the first workspace folder (where pulled prompt files go), undefined without one. */
  workspaceRoot(): string | undefined;
  /** A file's text, undefined when there is no such file. */
  readFile(path: string): Promise<string | undefined>;
  /** Write a file (its folders are created). */
  writeFile(path: string, text: string): Promise<void>;
  /** Show a file in an editor. */
  openFile(path: string): Promise<void>;
  /** Show text in a new untitled editor of this language. */
  openText(text: string, languageId: string): Promise<void>;
}
