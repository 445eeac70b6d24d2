// The registry as the extension sees it: a prompt picker, the Prompts tree (projects -> prompts -> labels and
// versions), and what "Insert prompt reference" / "Insert as code" put in the editor.
import type { Api } from "./client.js";
import type { PickItem, Ui } from "./facade.js";

export interface PromptSummary {
  id: string;
  name: string;
  description: string;
  tags: string[];
  latestVersion: number;
  labels: Record<string, number>;
  archived: boolean;
}

export interface VersionSummary {
  id: string;
  version: number;
  kind: string;
  template: string | null;
  messages: { role: string; content: string }[] | null;
  variables: { name: string; type?: string; required?: boolean; default?: unknown; description?: string }[];
  modelConfig: Record<string, unknown>;
  responseSchema: Record<string, unknown> | null;
  metadata: Record<string, unknown>;
  contentHash: string;
  labels: string[];
  commitMessage: string;
  source: string;
}

export interface ProjectSummary {
  id: string;
  name: string;
  description: string;
  role: string;
}

interface Page<T> {
  items: T[];
  nextCursor?: string | null;
}

const LIST_LIMIT = 200;
const MAX_VERSIONS = 1000;

/** `/api/v1/prompts/<ref>[/rest]` with each part escaped; '/' and '@' keep their meaning (as the CLI does). */
export function promptPath(ref: string, ...rest: string[]): string {
  const escape = (part: string) => encodeURIComponent(part).replace(/%2F/gi, "/").replace(/%40/g, "@");
  return ["/api/v1/prompts", escape(ref), ...rest.map(escape)].join("/");
}

/** Search filters of `GET /api/v1/prompts`: text in name or description, a tag, a label, a folder prefix. */
export interface PromptFilter {
  q?: string;
  tag?: string;
  label?: string;
  prefix?: string;
}

export async function listPrompts(api: Api, filter: PromptFilter = {}): Promise<PromptSummary[]> {
  const params = new URLSearchParams({ limit: String(LIST_LIMIT) });
  for (const [key, value] of Object.entries(filter)) if (value) params.set(key, value);
  return (await api.get<Page<PromptSummary>>(`/api/v1/prompts?${params}`)).items.filter((p) => !p.archived);
}

/** Every version of a prompt, newest first (following the cursor, up to 1000). */
export async function listVersions(api: Api, name: string): Promise<VersionSummary[]> {
  const all: VersionSummary[] = [];
  let cursor: string | null | undefined;
  do {
    const query = new URLSearchParams({ limit: "200", ...(cursor ? { cursor } : {}) });
    const page = await api.get<Page<VersionSummary>>(`${promptPath(name, "versions")}?${query}`);
    all.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && all.length < MAX_VERSIONS);
  return all;
}

/** The projects the key can see: an API key sees its own project only; a user session every membership. */
export async function listProjects(api: Api): Promise<ProjectSummary[]> {
  return api.get<ProjectSummary[]>("/api/v1/projects");
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
  return pickRefOf(ui, picked.prompt, title);
}

/** A label (`name@production`) or the newest version (`name@4`) of one prompt; with `allVersions`, every
 * version too (`name@3`, `name@2`, ...). */
export async function pickRefOf(
  ui: Ui,
  prompt: PromptSummary,
  title: string,
  allVersions = false,
): Promise<string | undefined> {
  const refs = Object.entries(prompt.labels).map(([label, version]) => ({
    label: `${prompt.name}@${label}`,
    description: `v${version}`,
  }));
  refs.push({ label: `${prompt.name}@${prompt.latestVersion}`, description: "newest version" });
  if (allVersions) {
    for (let v = prompt.latestVersion - 1; v >= 1; v--) refs.push({ label: `${prompt.name}@${v}`, description: `version ${v}` });
  }
  if (refs.length === 1) return refs[0].label;
  return (await ui.showQuickPick(refs, { title, placeHolder: "Label or version" }))?.label;
}

export function labelText(p: PromptSummary): string {
  const labels = Object.entries(p.labels).map(([label, version]) => `${label}→v${version}`);
  return [`v${p.latestVersion}`, ...labels].join("  ");
}

// --- the Prompts tree ---------------------------------------------------------------------------------------

export interface TreeNode {
  kind: "project" | "prompt" | "label" | "version";
  label: string;
  description?: string;
  tooltip?: string;
  /** The registry reference this node stands for (`name`, `name@label`, `name@3`; a project: its name). */
  ref: string;
  name: string;
  /** The project id the node belongs to (sent as `X-Project`; an API key's own project either way). */
  project?: string;
  expandable: boolean;
}

/** The children of a node: the roots are the projects the key can see (one for an API key), then a project's
 * prompts, then a prompt's labels and versions. */
export async function treeChildren(api: Api, node?: TreeNode): Promise<TreeNode[]> {
  if (!node) {
    return (await listProjects(api)).map((p) => ({
      kind: "project",
      label: p.name,
      description: p.role,
      tooltip: p.description || `${p.name} (${p.id}), your role: ${p.role}`,
      ref: p.name,
      name: p.name,
      project: p.id,
      expandable: true,
    }));
  }
  const scoped = api.inProject(node.project);
  if (node.kind === "project") {
    return (await listPrompts(scoped)).map((p) => ({
      kind: "prompt",
      label: p.name,
      description: labelText(p),
      tooltip: p.description || undefined,
      ref: p.name,
      name: p.name,
      project: node.project,
      expandable: true,
    }));
  }
  if (node.kind !== "prompt") return [];
  const versions = await listVersions(scoped, node.name);
  const labels: TreeNode[] = [];
  for (const v of versions) {
    for (const label of v.labels.filter((l) => l !== "latest")) {
      labels.push({
        kind: "label",
        label: `@${label}`,
        description: `v${v.version}`,
        ref: `${node.name}@${label}`,
        name: node.name,
        project: node.project,
        expandable: false,
      });
    }
  }
  const all: TreeNode[] = versions.map((v) => ({
    kind: "version",
    label: `v${v.version}`,
    description: [v.source, v.commitMessage].filter(Boolean).join(" · ").slice(0, 80),
    tooltip: v.template ?? undefined,
    ref: `${node.name}@${v.version}`,
    name: node.name,
    project: node.project,
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
    const found = await api.get<{ version: VersionSummary }>(promptPath(ref));
    text = found.version.template ?? ref;
  }
  await ui.replaceSelection(text);
  return text;
}

export type { PickItem };
