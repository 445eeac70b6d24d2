// `.prompt.md` files and the registry, as `promptops prompts push | pull` do it:
// - PromptOps: Push to registry: the open file -> `PUT /api/v1/prompts/{name}` (a dry run first says what would
//   happen: created, a new version, only description/tags updated, or unchanged; then the push itself). The
//   front matter's `labels` move to a new version, as with the CLI; an unchanged file moves nothing.
// - PromptOps: Pull: a prompt (label or version) -> the file in the CLI's format, overwriting the open file of
//   that prompt, or <workspace>/<name>.prompt.md.
// - The registry status of a file (the CodeLens): its normalised content against every version.
import { join } from "node:path";
import { type Api, connect, PromptOpsError } from "../client.js";
import type { Ui } from "../facade.js";
import {
  dumpPromptFile,
  type FileStatus,
  fileStatus,
  parsePromptFile,
  PromptFileError,
  type PromptFileBody,
  relativePathFor,
  SUFFIX,
} from "../promptfile.js";
import { listPrompts, listVersions, pickRefOf, labelText, promptPath, type PromptSummary, type TreeNode, type VersionSummary } from "../registry.js";

export interface PushOut {
  action: "created" | "versionCreated" | "updated" | "unchanged";
  dryRun: boolean;
  changed: string[];
  name: string;
  version: number;
  resolved: { prompt: PromptSummary; version: VersionSummary & { warnings: string[] } } | null;
}

export interface PushOutcome {
  name: string;
  action: PushOut["action"];
  version: number;
  /** Labels on the pushed version after the push (without `latest`). */
  labels: string[];
  changed: string[];
  warnings: string[];
}

export interface PullOutcome {
  ref: string;
  name: string;
  version: number;
  /** The file written, or "editor" (the open file of that prompt was replaced) or "untitled". */
  target: string;
  text: string;
  written: boolean;
}

const baseName = (path: string) => path.split(/[\\/]/).pop() ?? path;

/** A prompt file's push body; a malformed file is an error naming the file (like the CLI's). */
export function readPromptFile(text: string, fileName: string): PromptFileBody {
  try {
    return parsePromptFile(text, baseName(fileName));
  } catch (error) {
    if (error instanceof PromptFileError) throw new PromptOpsError(`PromptOps: ${error.message}`, undefined, error.code);
    throw error;
  }
}

/** The open `.prompt.md` editor, or an error shown (undefined). */
function promptFileEditor(ui: Ui, what: string): { text: string; fileName: string } | undefined {
  const editor = ui.editor();
  if (!editor || !editor.fileName.endsWith(SUFFIX)) {
    ui.showError(`PromptOps: open a ${SUFFIX} file to ${what}.`);
    return undefined;
  }
  return { text: editor.document, fileName: editor.fileName };
}

function pushFailed(error: unknown, name: string, labels: string[], dryRun: boolean): unknown {
  if (!(error instanceof PromptOpsError)) return error;
  let message = `Cannot push ${name}: ${error.message}`;
  if (error.status === 403 && !dryRun && labels.length) {
    // The dry run passed, so the key may write prompts: what it may not do is move the file's labels.
    message +=
      ` The front matter moves the label(s) ${labels.join(", ")}: that needs label:write, and for a deployable label ` +
      "(production by default) label:deploy. Remove 'labels' from the front matter to push without moving labels.";
  }
  return new PromptOpsError(message, error.status, error.code);
}

/** PromptOps: Push to registry. */
export async function push(ui: Ui): Promise<PushOutcome | undefined> {
  const file = promptFileEditor(ui, "push it");
  if (!file) return undefined;
  const body = readPromptFile(file.text, file.fileName);
  const api = await connect(ui);
  if (!api) return undefined;
  const labels = body.labels ?? [];
  const path = promptPath(body.name);
  let plan: PushOut;
  try {
    plan = await api.put<PushOut>(`${path}?dryRun=true`, body);
  } catch (error) {
    throw pushFailed(error, body.name, labels, true);
  }
  if (plan.action === "unchanged") {
    ui.showInfo(`PromptOps: ${body.name} is unchanged (v${plan.version} has this content); nothing pushed, no label moved.`);
    return { name: body.name, action: "unchanged", version: plan.version, labels: [], changed: [], warnings: [] };
  }
  let sent = body;
  if (plan.action === "created" || plan.action === "versionCreated") {
    const message = await ui.showInputBox({
      prompt: `Commit message for ${body.name} v${plan.version}${plan.action === "created" ? " (a new prompt)" : ""}`,
      placeHolder: "What changed (optional)",
      value: body.commitMessage ?? "",
    });
    if (message === undefined) return undefined;
    sent = { ...body, commitMessage: message.trim() };
  }
  let pushed: PushOut;
  try {
    pushed = await api.put<PushOut>(path, sent);
  } catch (error) {
    throw pushFailed(error, body.name, labels, false);
  }
  const version = pushed.resolved?.version;
  const outcome: PushOutcome = {
    name: pushed.name,
    action: pushed.action,
    version: pushed.version,
    labels: (version?.labels ?? []).filter((l) => l !== "latest"),
    changed: pushed.changed,
    warnings: pushed.action === "created" || pushed.action === "versionCreated" ? (version?.warnings ?? []) : [],
  };
  const moved = outcome.labels.length && pushed.action !== "updated" ? ` (labels: ${outcome.labels.join(", ")})` : "";
  const details = pushed.changed.length ? `; updated ${pushed.changed.join(", ")}` : "";
  const what = {
    created: `created ${pushed.name} v${pushed.version}${moved}`,
    versionCreated: `pushed ${pushed.name} v${pushed.version}${moved}`,
    updated: `updated ${pushed.changed.join(", ")} of ${pushed.name} (content unchanged, v${pushed.version})`,
    unchanged: `${pushed.name} is unchanged (v${pushed.version})`,
  }[pushed.action];
  const lint = outcome.warnings.length ? ` · ${outcome.warnings.length} lint warning(s): ${outcome.warnings[0]}` : "";
  ui.showInfo(`PromptOps: ${what}${pushed.action === "updated" ? "" : details}${lint}`);
  return outcome;
}

/** The prompt name a document's front matter gives, if it parses. */
export function fileName(text: string): string | undefined {
  try {
    return parsePromptFile(text).name;
  } catch {
    return undefined;
  }
}

async function pickPullRef(api: Api, ui: Ui, node: TreeNode | undefined, current: string | undefined): Promise<string | undefined> {
  const title = "PromptOps: Pull";
  if (node && (node.kind === "label" || node.kind === "version")) return node.ref;
  let prompt: PromptSummary | undefined;
  if (node?.kind === "prompt") {
    prompt = (await api.get<{ prompt: PromptSummary }>(promptPath(node.name))).prompt;
  } else {
    const prompts = await listPrompts(api);
    if (prompts.length === 0) {
      ui.showError("PromptOps: the registry has no prompts yet in this project.");
      return undefined;
    }
    // The open file's prompt first.
    prompts.sort((a, b) => Number(b.name === current) - Number(a.name === current));
    const picked = await ui.showQuickPick(
      prompts.map((p) => ({
        label: p.name,
        description: `${p.name === current ? "this file · " : ""}${labelText(p)}`,
        detail: p.description || undefined,
        prompt: p,
      })),
      { title, placeHolder: "Prompt to pull" },
    );
    prompt = picked?.prompt;
  }
  return prompt ? pickRefOf(ui, prompt, title, true) : undefined;
}

/** Write a prompt version as a prompt file: into the open file of that prompt, else <workspace>/<name>.prompt.md
 * (asking before overwriting a different file), else an untitled editor. */
export async function writePulled(ui: Ui, ref: string, resolved: { prompt: PromptSummary; version: VersionSummary }): Promise<PullOutcome> {
  const { prompt, version } = resolved;
  const text = dumpPromptFile(prompt, version);
  const outcome: PullOutcome = { ref, name: prompt.name, version: version.version, target: "", text, written: false };
  const where = `${prompt.name} v${version.version}`;
  const editor = ui.editor();
  if (editor && editor.fileName.endsWith(SUFFIX) && fileName(editor.document) === prompt.name) {
    outcome.target = editor.fileName;
    if (editor.document === text) {
      ui.showInfo(`PromptOps: ${baseName(editor.fileName)} already holds ${where}.`);
      return outcome;
    }
    outcome.written = await ui.replaceDocument(text);
    ui.showInfo(`PromptOps: pulled ${where} (${ref}) into ${baseName(editor.fileName)}; save it to keep it.`);
    return outcome;
  }
  const root = ui.workspaceRoot();
  if (!root) {
    outcome.target = "untitled";
    await ui.openText(text, "promptmd");
    ui.showInfo(`PromptOps: no folder is open; ${where} is in an untitled editor (save it as ${relativePathFor(prompt.name)}).`);
    return outcome;
  }
  const path = join(root, relativePathFor(prompt.name));
  outcome.target = path;
  const existing = await ui.readFile(path);
  if (existing === text) {
    ui.showInfo(`PromptOps: ${relativePathFor(prompt.name)} already holds ${where}.`);
    await ui.openFile(path);
    return outcome;
  }
  if (existing !== undefined) {
    const answer = await ui.showQuickPick([{ label: "Overwrite" }, { label: "Cancel" }], {
      title: `PromptOps: ${relativePathFor(prompt.name)} differs from ${where}`,
      placeHolder: "Overwrite the file with the registry's version?",
    });
    if (answer?.label !== "Overwrite") return outcome;
  }
  await ui.writeFile(path, text);
  outcome.written = true;
  await ui.openFile(path);
  ui.showInfo(`PromptOps: pulled ${where} (${ref}) into ${relativePathFor(prompt.name)}.`);
  return outcome;
}

/** PromptOps: Pull. */
export async function pull(ui: Ui, node?: TreeNode): Promise<PullOutcome | undefined> {
  const connected = await connect(ui);
  if (!connected) return undefined;
  const api = connected.inProject(node?.project);
  const editor = ui.editor();
  const current = editor?.fileName.endsWith(SUFFIX) ? fileName(editor.document) : undefined;
  const ref = await pickPullRef(api, ui, node, current);
  if (!ref) return undefined;
  const resolved = await api.get<{ prompt: PromptSummary; version: VersionSummary }>(promptPath(ref));
  return writePulled(ui, ref, resolved);
}

// --- registry status ------------------------------------------------------------------------------------------

/** The versions of prompts, kept a few seconds so a CodeLens refresh on every edit does not hit the server. */
export class VersionCache {
  private readonly entries = new Map<string, { at: number; versions: Promise<VersionSummary[] | null> }>();

  constructor(private readonly ttlMs = 15_000) {}

  versions(api: Api, name: string): Promise<VersionSummary[] | null> {
    const key = `${api.baseUrl}|${api.project ?? ""}|${name}`;
    const hit = this.entries.get(key);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.versions;
    const versions = listVersions(api, name).catch((error: unknown) => {
      if (error instanceof PromptOpsError && error.status === 404) return null; // not in the registry
      this.entries.delete(key);
      throw error;
    });
    this.entries.set(key, { at: Date.now(), versions });
    return versions;
  }

  clear(): void {
    this.entries.clear();
  }
}

/** The registry status of a prompt file's text: in sync with a version, changed, not in the registry, invalid. */
export async function registryStatus(api: Api, text: string, file: string, cache?: VersionCache): Promise<FileStatus> {
  let body: PromptFileBody;
  try {
    body = parsePromptFile(text, baseName(file));
  } catch (error) {
    if (error instanceof PromptFileError) return { state: "invalid", text: error.message };
    throw error;
  }
  const versions = cache
    ? await cache.versions(api, body.name)
    : await listVersions(api, body.name).catch((error: unknown) => {
        if (error instanceof PromptOpsError && error.status === 404) return null;
        throw error;
      });
  return fileStatus(body, versions);
}

export interface Lens {
  title: string;
  /** The command a click runs ("" for none). */
  command: string;
  tooltip?: string;
}

/** The CodeLenses on the first line of a prompt file for its status (or for why there is none). */
export function statusLenses(status: FileStatus | { state: "error"; text: string; needsKey?: boolean }): Lens[] {
  switch (status.state) {
    case "inSync":
      return [
        { title: `$(check) PromptOps: ${status.text}`, command: "", tooltip: `${status.name}: this file equals v${status.version} in the registry` },
        { title: "Pull…", command: "promptops.pull" },
      ];
    case "changed":
      return [
        { title: `$(diff-modified) PromptOps: ${status.text}`, command: "", tooltip: `${status.name}: the file matches no version in the registry` },
        { title: `Push as v${status.latest + 1}`, command: "promptops.push" },
        { title: "Pull…", command: "promptops.pull" },
      ];
    case "missing":
      return [
        { title: `$(circle-outline) PromptOps: ${status.text}`, command: "", tooltip: `No prompt named ${status.name} in this project` },
        { title: "Push (create it)", command: "promptops.push" },
      ];
    case "invalid":
      return [{ title: `$(warning) PromptOps: ${status.text}`, command: "" }];
    case "error":
      return [{ title: `$(circle-slash) PromptOps: registry status unavailable`, command: status.needsKey ? "promptops.setApiKey" : "", tooltip: status.text }];
  }
}
