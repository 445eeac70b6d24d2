// PromptOps: Rate a prompt version. A registry prompt, a score 1-5 and a note -> POST /api/prompt/feedback.
import { connect } from "../client.js";
import type { Ui } from "../facade.js";
import { pickPromptRef } from "../registry.js";

export interface FeedbackOut {
  id: string;
  promptId: string;
  versionId: string;
  score: number;
  notes: string;
}

const SCORES = ["5 excellent", "4 good", "3 acceptable", "2 poor", "1 unusable"];

export async function rate(ui: Ui, ref?: string): Promise<FeedbackOut | undefined> {
  const api = await connect(ui);
  if (!api) return undefined;
  const target = ref ?? (await pickPromptRef(api, ui, "PromptOps: Rate a prompt version"));
  if (!target) return undefined;
  const score = await ui.showQuickPick(SCORES.map((label) => ({ label })), { title: `Rate ${target}`, placeHolder: "Score (1-5)" });
  if (!score) return undefined;
  const notes = (await ui.showInputBox({ prompt: "A note (optional)", placeHolder: "what worked, what did not" })) ?? "";
  const saved = await api.post<FeedbackOut>("/api/prompt/feedback", { promptId: target, score: Number(score.label[0]), notes });
  ui.showInfo(`PromptOps: feedback recorded on ${target} (${score.label}).`);
  return saved;
}
