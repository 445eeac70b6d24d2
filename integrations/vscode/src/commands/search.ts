// PromptOps: Search prompts. Words, `tag:NAME`, `label:NAME`, `prefix:FOLDER/` -> the filters of
// `GET /api/v1/prompts` (q, tag, label, prefix) -> the matches in a quick pick -> a label or version -> insert its
// reference, insert it as code, open it as a .prompt.md, or pull it into the workspace.
import { connect } from "../client.js";
import type { Ui } from "../facade.js";
import { dumpPromptFile } from "../promptfile.js";
import { insertAsCode, labelText, listPrompts, pickRefOf, type PromptFilter, promptPath, type PromptSummary, type VersionSummary } from "../registry.js";
import { type PullOutcome, writePulled } from "./sync.js";

export const ACTIONS = {
  reference: "Insert reference",
  code: "Insert as code",
  open: "Open as .prompt.md",
  pull: "Pull into the workspace",
} as const;

export interface SearchOutcome {
  filter: PromptFilter;
  matches: string[];
  ref?: string;
  action?: keyof typeof ACTIONS;
  /** What was inserted, opened or pulled. */
  result?: string | PullOutcome;
}

/** `refund tag:support label:production prefix:billing/` -> {q: "refund", tag, label, prefix}. */
export function parseSearch(text: string): PromptFilter {
  const filter: PromptFilter = {};
  const words: string[] = [];
  for (const word of text.trim().split(/\s+/).filter(Boolean)) {
    const match = /^(tag|label|prefix):(.+)$/i.exec(word);
    if (match) filter[match[1].toLowerCase() as "tag" | "label" | "prefix"] = match[2];
    else words.push(word);
  }
  if (words.length) filter.q = words.join(" ");
  return filter;
}

function describe(filter: PromptFilter): string {
  const parts = Object.entries(filter).map(([key, value]) => (key === "q" ? JSON.stringify(value) : `${key}:${value}`));
  return parts.length ? parts.join(" ") : "(everything)";
}

export async function search(ui: Ui): Promise<SearchOutcome | undefined> {
  const api = await connect(ui);
  if (!api) return undefined;
  const text = await ui.showInputBox({
    prompt: "Search prompts: words in the name or description; tag:NAME, label:NAME, prefix:FOLDER/ filter",
    placeHolder: "refund tag:support label:production",
  });
  if (text === undefined) return undefined;
  const filter = parseSearch(text);
  const prompts = await listPrompts(api, filter);
  const outcome: SearchOutcome = { filter, matches: prompts.map((p) => p.name) };
  if (prompts.length === 0) {
    ui.showInfo(`PromptOps: no prompt matches ${describe(filter)}.`);
    return outcome;
  }
  const title = `PromptOps: ${prompts.length} prompt(s) match ${describe(filter)}`;
  const picked = await ui.showQuickPick(
    prompts.map((p: PromptSummary) => ({
      label: p.name,
      description: labelText(p),
      detail: [p.tags.length ? p.tags.map((t) => `#${t}`).join(" ") : "", p.description].filter(Boolean).join("  ") || undefined,
      prompt: p,
    })),
    { title, placeHolder: "Prompt" },
  );
  if (!picked) return outcome;
  const action = await ui.showQuickPick(
    (Object.entries(ACTIONS) as [keyof typeof ACTIONS, string][]).map(([key, label]) => ({ label, key })),
    { title: `PromptOps: ${picked.prompt.name}`, placeHolder: "What to do with it" },
  );
  if (!action) return outcome;
  const ref = await pickRefOf(ui, picked.prompt, `PromptOps: ${action.label}`, true);
  if (!ref) return outcome;
  outcome.ref = ref;
  outcome.action = action.key;
  if (action.key === "reference") {
    if (await ui.replaceSelection(ref)) outcome.result = ref;
    else ui.showError("PromptOps: open an editor to insert into.");
  } else if (action.key === "code") {
    outcome.result = await insertAsCode(api, ui, ref);
  } else {
    const resolved = await api.get<{ prompt: PromptSummary; version: VersionSummary }>(promptPath(ref));
    if (action.key === "open") {
      outcome.result = dumpPromptFile(resolved.prompt, resolved.version);
      await ui.openText(outcome.result, "promptmd");
    } else {
      outcome.result = await writePulled(ui, ref, resolved);
    }
  }
  return outcome;
}
