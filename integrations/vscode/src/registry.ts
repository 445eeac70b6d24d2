// The registry as the extension sees it: a prompt picker, the Prompts tree (prompts -> labels and versions), and
// what "Insert prompt reference" / "Insert as code" put in the editor.
import type { Api } from "./client.js";
import type { PickItem, Ui } from "./facade.js";

export interface PromptSummary {
  id: string;
  name: string;
  description: string;
  latestVersion: number;
  labels: Record<string, number>;
  archived: boolean;
}

export interface VersionSummary {
  id: string;
  version: number;
  kind: string;
  template: string | null;
  labels: string[];
  commitMessage: string;
  source: string;
}

interface Page<T> {
  items: T[];
}

const LIST_LIMIT = 200;

export async function listPrompts(api: Api): Promise<PromptSummary[]> {
  return (await api.get<Page<PromptSummary>>(`/api/v1/prompts?limit=${LIST_LIMIT}`)).items.filter((p) => !p.archived);
}

export async function listVersions(api: Api, name: string): Promise<VersionSummary[]> {
  return (await api.get<Page<VersionSummary>>(`/api/v1/prompts/${encodeURI(name)}/versions?limit=100`)).items;
}

/** A reference the user picks: `name@production` when that label exists, else `name@latest-version`. */
export async function pickPromptRef(api: Api, ui: Ui, title: string): Promise<string | undefined> {
  const prompts = await listPrompts(api);
  if (prompts.length === 0) {
    ui.showError("PromptOps: the registry has no prompts yet in this project.");
    return undefined;
  }
  const picked = await ui.showQuickPick(
    prompts.map((p) => ({ label: p.name, description: labelText(p), detail: p.description || undefined, prompt: p })),
    { title, placeHolder: "Prompt from the registry" },
  );
  if (!picked) return undefined;
  const refs = Object.entries(picked.prompt.labels).map(([label, version]) => ({
    label: `${picked.prompt.name}@${label}`,
    description: `v${version}`,
  }));
  refs.push({ label: `${picked.prompt.name}@${picked.prompt.latestVersion}`, description: "newest version" });
  if (refs.length === 1) return refs[0].label;
  return (await ui.showQuickPick(refs, { title, placeHolder: "Label or version" }))?.label;
}

function labelText(p: PromptSummary): string {
  const labels = Object.entries(p.labels).map(([label, version]) => `${label}→v${version}`);
  return [`v${p.latestVersion}`, ...labels].join("  ");
}

// --- the Prompts tree ---------------------------------------------------------------------------------------

export interface TreeNode {
  kind: "prompt" | "label" | "version";
  label: string;
  description?: string;
  tooltip?: string;
  /** The registry reference this node stands for (`name`, `name@label`, `name@3`). */
  ref: string;
  name: string;
  expandable: boolean;
}

/** The children of a node (undefined: the roots, one per prompt). */
export async function treeChildren(api: Api, node?: TreeNode): Promise<TreeNode[]> {
  if (!node) {
    return (await listPrompts(api)).map((p) => ({
      kind: "prompt",
      label: p.name,
      description: labelText(p),
      tooltip: p.description || undefined,
      ref: p.name,
      name: p.name,
      expandable: true,
    }));
  }
  if (node.kind !== "prompt") return [];
  const versions = await listVersions(api, node.name);
  const labels: TreeNode[] = [];
  for (const v of versions) {
    for (const label of v.labels.filter((l) => l !== "latest")) {
      labels.push({ kind: "label", label: `@${label}`, description: `v${v.version}`, ref: `${node.name}@${label}`, name: node.name, expandable: false });
    }
  }
  const all: TreeNode[] = versions.map((v) => ({
    kind: "version",
    label: `v${v.version}`,
    description: [v.source, v.commitMessage].filter(Boolean).join(" · ").slice(0, 80),
    tooltip: v.template ?? undefined,
    ref: `${node.name}@${v.version}`,
    name: node.name,
    expandable: false,
  }));
  return [...labels, ...all];
}

// --- insertion ------------------------------------------------------------------------------------------------

function parseRef(ref: string): { name: string; label?: string; version?: number } {
  const at = ref.lastIndexOf("@");
  if (at < 0) return { name: ref };
  const name = ref.slice(0, at);
  const tail = ref.slice(at + 1);
  return /^\d+$/.test(tail) ? { name, version: Number(tail) } : { name, label: tail };
}

/** The SDK call that fetches this prompt, for Python or TypeScript; the reference itself elsewhere. */
export function codeFor(ref: string, languageId: string): string {
  const { name, label, version } = parseRef(ref);
  const q = JSON.stringify;
  if (languageId === "python") {
    const arg = version !== undefined ? `, version=${version}` : label ? `, label=${q(label)}` : "";
    return `prompt = po.get_prompt(${q(name)}${arg})  # po = promptops_sdk.PromptOps()\n`;
  }
  if (languageId === "typescript" || languageId === "javascript" || languageId === "typescriptreact") {
    const arg = version !== undefined ? `, { version: ${version} }` : label ? `, { label: ${q(label)} }` : "";
    return `const prompt = await po.getPrompt(${q(name)}${arg}); // po = new PromptOps() from "@promptops/sdk/node"\n`;
  }
  return ref;
}

/** "Insert as code" for a reference: the SDK call, or for other languages the rendered template text. */
export async function insertAsCode(api: Api, ui: Ui, ref: string): Promise<string | undefined> {
  const editor = ui.editor();
  if (!editor) {
    ui.showError("PromptOps: open an editor to insert into.");
    return undefined;
  }
  let text = codeFor(ref, editor.languageId);
  if (text === ref) {
    const found = await api.get<{ version: VersionSummary }>(`/api/v1/prompts/${encodeURI(ref)}`);
    text = found.version.template ?? ref;
  }
  await ui.replaceSelection(text);
  return text;
}

export type { PickItem };
