// Every command the extension registers, by id (package.json `contributes.commands` must list exactly these).
import { askKey, clearKey, connect } from "../client.js";
import type { Ui } from "../facade.js";
import { insertAsCode, pickPromptRef, type TreeNode } from "../registry.js";
import { evaluate } from "./evaluate.js";
import { rate } from "./feedback.js";
import { generate } from "./generate.js";
import { refine } from "./refine.js";
import { search } from "./search.js";
import { pull, push } from "./sync.js";

export type Handler = (ui: Ui, node?: TreeNode) => Promise<unknown>;

async function refOf(ui: Ui, node: TreeNode | undefined, title: string): Promise<{ ref: string } | undefined> {
  if (node && node.kind !== "project") return { ref: node.ref };
  const api = await connect(ui);
  if (!api) return undefined;
  const ref = await pickPromptRef(api, ui, title);
  return ref ? { ref } : undefined;
}

export const HANDLERS: Record<string, Handler> = {
  "promptops.generate": (ui) => generate(ui),
  "promptops.evaluate": (ui) => evaluate(ui),
  "promptops.refine": (ui) => refine(ui),
  "promptops.setApiKey": (ui) => askKey(ui),
  "promptops.clearApiKey": (ui) => clearKey(ui),
  "promptops.feedback": (ui, node) => rate(ui, node && node.kind !== "project" ? node.ref : undefined),
  "promptops.insertReference": async (ui, node) => {
    const picked = await refOf(ui, node, "PromptOps: Insert prompt reference");
    if (picked && !(await ui.replaceSelection(picked.ref))) ui.showError("PromptOps: open an editor to insert into.");
    return picked?.ref;
  },
  "promptops.insertCode": async (ui, node) => {
    const picked = await refOf(ui, node, "PromptOps: Insert prompt as code");
    const api = picked && (await connect(ui));
    return picked && api ? insertAsCode(api.inProject(node?.project), ui, picked.ref) : undefined;
  },
  "promptops.push": (ui) => push(ui),
  "promptops.pull": (ui, node) => pull(ui, node),
  "promptops.search": (ui) => search(ui),
  // handled by the tree view in extension.ts; listed so the manifest test sees every contributed command
  "promptops.refreshPrompts": async () => undefined,
};
