// PromptOpt: Refine. The selection (raw text), the open .prompt.md file or a registry prompt + notes ->
// POST /api/prompt/refine as a proposal (raw text is never saved; a registry prompt is asked with dryRun) ->
// a diff of the old and the proposed prompt -> Accept replaces the selection (raw text) or saves the reviewed
// proposal as a new version through the accept flow (registry prompt); Reject changes nothing.
import { connect } from "../client.js";
import type { Ui } from "../facade.js";
import { pickPromptRef } from "../registry.js";
import { editorPrompt, promptFileBody } from "./evaluate.js";

export interface Refinement {
  promptId: string;
  versionId: string | null;
  parentId: string;
  version: number | null;
  prompt: string;
  rationale: string;
  diff: string;
  strategy: string;
  modelConfig: { params?: Record<string, unknown> };
}

export interface RefineOutcome {
  source: "text" | "registry";
  original: string;
  proposal: Refinement;
  accepted: boolean;
  saved: Refinement | null;
}

const ACCEPT = "Accept";
const REJECT = "Reject";

export async function refine(ui: Ui, options: { model?: unknown } = {}): Promise<RefineOutcome | undefined> {
  const api = await connect(ui);
  if (!api) return undefined;
  const editor = ui.editor();
  const text = editorPrompt(ui);
  let ref: string | undefined;
  if (text === undefined) {
    ref = await pickPromptRef(api, ui, "PromptOpt: Refine");
    if (!ref) return undefined;
  }
  const feedback = (
    await ui.showInputBox({ prompt: "What should change? (notes, e.g. 'answer with one word')", placeHolder: "answer with one word" })
  )?.trim();
  if (!feedback) return undefined;
  const extra = options.model ? { model: options.model } : {};
  let original = text ?? "";
  let body: Record<string, unknown> = { text, feedback, ...extra };
  if (text === undefined) {
    // Pin the version that is shown: the proposal and the save apply to it even if a label moves meanwhile.
    const resolved = await api.get<{ version: { id: string; template: string | null } }>(`/api/v1/prompts/${encodeURI(ref ?? "")}`);
    original = resolved.version.template ?? "";
    body = { prompt: resolved.version.id, feedback, dryRun: true, ...extra };
  }
  const proposal = await api.post<Refinement>("/api/prompt/refine", body);
  const title = `PromptOpt: Refine (${proposal.strategy}) ${text !== undefined ? "selection" : ref}`;
  await ui.showDiff(title, original, proposal.prompt);
  const answer = await ui.showQuickPick(
    [
      { label: ACCEPT, description: text !== undefined ? "replace the text in the editor" : "save as a new version (no label moves)" },
      { label: REJECT, description: "keep the prompt as it is" },
    ],
    { title, placeHolder: proposal.rationale.split("\n").at(-1) },
  );
  const accepted = answer?.label === ACCEPT;
  const outcome: RefineOutcome = { source: text !== undefined ? "text" : "registry", original, proposal, accepted, saved: null };
  if (!accepted) return outcome;
  if (text !== undefined) {
    if (editor && !editor.selection.trim() && editor.fileName.endsWith(".prompt.md")) {
      const body = promptFileBody(editor.document);
      const at = editor.document.lastIndexOf(body);
      await ui.replaceDocument(editor.document.slice(0, at) + proposal.prompt + editor.document.slice(at + body.length));
    } else {
      await ui.replaceSelection(proposal.prompt);
    }
    return outcome;
  }
  outcome.saved = await api.post<Refinement>("/api/prompt/refine", {
    prompt: proposal.parentId,
    feedback,
    accept: { template: proposal.prompt, strategy: proposal.strategy, params: proposal.modelConfig.params ?? null },
  });
  ui.showInfo(`PromptOpt: saved ${ref?.split("@")[0]} v${outcome.saved.version} (no label moved).`);
  return outcome;
}
