// PromptOpt: Evaluate. The selection (or the open .prompt.md file, or a registry prompt) against inline cases or
// a registry dataset -> POST /api/prompt/evaluate -> a results panel with the pass rate, every case's output and
// the verdict against the current production version.
import { type Api, connect, PromptOpsError } from "../client.js";
import type { Ui } from "../facade.js";
import { type CaseRow, resultsHtml, type ResultsView } from "../html.js";
import { pickPromptRef } from "../registry.js";

export interface TestCase {
  input: string | Record<string, unknown>;
  expected?: string | null;
}

export interface EvalResult {
  promptId: string;
  versionId: string | null;
  score: number;
  passRate: number;
  feedback: string;
  baselines: { sentence?: string } | null;
  cases: { index: number; output: string | null; expected: string | null; score: number; passed: boolean; error: string | null }[];
}

export interface EvaluateOutcome {
  subject: string;
  result: EvalResult;
  production: EvalResult | null;
  verdict: string;
  html: string;
}

const MAX_CASES = 100;
const INLINE = "Type test cases";
const DATASET = "Use a registry dataset";

/** `input => expected` pairs separated by `;` or new lines (an input without `=>` has no expected answer). */
export function parseInlineCases(text: string): TestCase[] {
  return text
    .split(/;|\n/)
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const at = part.lastIndexOf("=>");
      return at < 0 ? { input: part } : { input: part.slice(0, at).trim(), expected: part.slice(at + 2).trim() || null };
    });
}

/** The template of a `.prompt.md` file: its body after the front matter. */
export function promptFileBody(text: string): string {
  const match = /^---\r?\n[\s\S]*?\r?\n---\r?\n?/.exec(text);
  return (match ? text.slice(match[0].length) : text).trim();
}

/** What to evaluate or refine: the selection, the open .prompt.md file, else undefined (pick from the registry). */
export function editorPrompt(ui: Ui): string | undefined {
  const editor = ui.editor();
  if (!editor) return undefined;
  if (editor.selection.trim()) return editor.selection;
  if (editor.fileName.endsWith(".prompt.md")) return promptFileBody(editor.document) || undefined;
  return undefined;
}

async function datasetCases(api: Api, ui: Ui): Promise<TestCase[] | undefined> {
  const page = await api.get<{ items: { name: string; latestVersion: number; description: string }[] }>("/api/v1/datasets?limit=200");
  if (page.items.length === 0) {
    ui.showError("PromptOps: the project has no datasets; type test cases instead.");
    return undefined;
  }
  const picked = await ui.showQuickPick(
    page.items.map((d) => ({ label: d.name, description: `v${d.latestVersion}`, detail: d.description || undefined, dataset: d })),
    { title: "PromptOpt: Evaluate", placeHolder: "Dataset" },
  );
  if (!picked) return undefined;
  const { name, latestVersion } = picked.dataset;
  const cases = await api.get<{ items: { input: string | Record<string, unknown>; expected: string | null }[] }>(
    `/api/v1/datasets/${encodeURI(name)}/versions/${latestVersion}/cases?limit=${MAX_CASES}`,
  );
  return cases.items.map((c) => ({ input: c.input, expected: c.expected }));
}

async function askCases(api: Api, ui: Ui): Promise<TestCase[] | undefined> {
  const source = await ui.showQuickPick([{ label: INLINE }, { label: DATASET }], { title: "PromptOpt: Evaluate", placeHolder: "Test cases" });
  if (!source) return undefined;
  if (source.label === DATASET) return datasetCases(api, ui);
  const text = await ui.showInputBox({
    prompt: "Test cases: input => expected, separated by ';'",
    placeHolder: "Great value => positive; Broke in a day => negative",
  });
  const cases = text ? parseInlineCases(text) : [];
  return cases.length ? cases.slice(0, MAX_CASES) : undefined;
}

function inputText(input: string | Record<string, unknown>): string {
  return typeof input === "string" ? input : Object.entries(input).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join("\n");
}

function verdictOf(result: EvalResult, production: EvalResult | null, productionRef: string | null): string {
  const baseline = result.baselines?.sentence ? ` ${result.baselines.sentence}` : "";
  if (!production || !productionRef) return `No production version to compare with.${baseline}`;
  const delta = result.passRate - production.passRate;
  const where = `${productionRef} passes ${(100 * production.passRate).toFixed(1)}%`;
  if (Math.abs(delta) < 1e-9 && Math.abs(result.score - production.score) < 1e-9) return `Same as production (${where}).${baseline}`;
  const better = delta > 0 || (delta === 0 && result.score > production.score);
  return `${better ? "Better" : "Worse"} than production (${where}; this one ${(100 * result.passRate).toFixed(1)}%).${baseline}`;
}

export async function evaluate(ui: Ui, options: { model?: unknown } = {}): Promise<EvaluateOutcome | undefined> {
  const api = await connect(ui);
  if (!api) return undefined;
  let prompt = editorPrompt(ui);
  let subject = "the selected text";
  if (prompt === undefined) {
    prompt = await pickPromptRef(api, ui, "PromptOpt: Evaluate");
    if (!prompt) return undefined;
    subject = prompt;
  }
  const cases = await askCases(api, ui);
  if (!cases) return undefined;
  const body = (p: string) => ({ prompt: p, testCases: cases, ...(options.model ? { model: options.model } : {}) });
  const result = await api.post<EvalResult>("/api/prompt/evaluate", body(prompt));
  // The verdict: the same cases on the production version of the same prompt (when there is one).
  const name = subject === "the selected text" ? null : subject.slice(0, subject.lastIndexOf("@") > 0 ? subject.lastIndexOf("@") : undefined);
  let production: EvalResult | null = null;
  let productionRef: string | null = null;
  if (name && subject !== `${name}@production`) {
    productionRef = `${name}@production`;
    try {
      production = await api.post<EvalResult>("/api/prompt/evaluate", body(productionRef));
    } catch (error) {
      if (!(error instanceof PromptOpsError && error.status === 404)) throw error;
      productionRef = null;
    }
  }
  const verdict = verdictOf(result, production, productionRef);
  const rows: CaseRow[] = result.cases.map((c) => ({
    index: c.index,
    input: inputText(cases[c.index]?.input ?? ""),
    expected: c.expected,
    output: c.output,
    score: c.score,
    passed: c.passed,
    error: c.error,
  }));
  const view: ResultsView = { subject, passRate: result.passRate, score: result.score, feedback: result.feedback, verdict, cases: rows };
  const html = resultsHtml(view);
  ui.showHtml(`PromptOpt: Evaluate ${subject}`, html);
  return { subject, result, production, verdict, html };
}
