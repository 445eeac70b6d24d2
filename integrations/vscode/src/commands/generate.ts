// PromptOpt: Generate. The task from an input box, the selection as context -> POST /api/prompt/generate ->
// the candidates (best first, with scores) in a quick pick -> insert the chosen prompt's text or its reference.
// Every candidate is already saved by the server as a draft version (no label moves).
import { connect } from "../client.js";
import type { Ui } from "../facade.js";

export interface Candidate {
  prompt: string;
  score: number;
  modelVersion: string;
  versionId: string;
  version: number;
  strategy: string;
  qualityScore: number;
  evalScore: number | null;
  passRate: number | null;
}

export interface CandidateList {
  candidates: Candidate[];
  name: string;
  promptId: string;
  scoring: string;
}

export interface GenerateOutcome {
  list: CandidateList;
  chosen: Candidate;
  inserted: string;
}

const INSERT_TEXT = "Insert the prompt text";
const INSERT_REF = "Insert a registry reference";

export async function generate(ui: Ui, options: { count?: number; model?: unknown } = {}): Promise<GenerateOutcome | undefined> {
  const api = await connect(ui);
  if (!api) return undefined;
  const task = (await ui.showInputBox({ prompt: "What must the prompt do?", placeHolder: "Classify the sentiment of a product review" }))?.trim();
  if (!task) return undefined;
  const editor = ui.editor();
  const context = editor?.selection.trim() ?? "";
  const body: Record<string, unknown> = { task, count: options.count ?? 4 };
  if (context) body.context = context.slice(0, 20_000);
  if (options.model) body.model = options.model;
  const list = await api.post<CandidateList>("/api/prompt/generate", body);
  const chosen = await ui.showQuickPick(
    list.candidates.map((c) => ({
      label: `${c.score.toFixed(2)}  ${firstLine(c.prompt)}`,
      description: `${c.strategy} · ${c.modelVersion} · v${c.version}`,
      detail: c.prompt.replace(/\s+/g, " ").slice(0, 200),
      candidate: c,
    })),
    { title: `PromptOpt: ${list.candidates.length} candidate(s) saved as drafts of ${list.name}`, placeHolder: list.scoring },
  );
  if (!chosen) return undefined;
  const how = await ui.showQuickPick([{ label: INSERT_TEXT }, { label: INSERT_REF, description: `${list.name}@${chosen.candidate.version}` }], {
    title: "PromptOpt: use the chosen candidate",
  });
  if (!how) return undefined;
  const inserted = how.label === INSERT_TEXT ? chosen.candidate.prompt : `${list.name}@${chosen.candidate.version}`;
  if (!(await ui.replaceSelection(inserted))) {
    ui.showInfo(`PromptOpt: saved as ${list.name}@${chosen.candidate.version} (no editor open to insert into).`);
  }
  return { list, chosen: chosen.candidate, inserted };
}

export function firstLine(text: string): string {
  const line = text.split("\n").find((l) => l.trim()) ?? "";
  return line.length > 60 ? `${line.slice(0, 59)}…` : line;
}
