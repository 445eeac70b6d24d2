// What the evaluation pages share: the run query (polled while it works), status badges, every result and every
// case of a run (for the drill-down and the CSV export), the CSV itself and the comparison in words.
import { Badge, Button, Tooltip, type ButtonProps } from "@mantine/core";
import type { ReactNode } from "react";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../../api/client";
import { CHANGE_COLOR, OK_COLOR } from "../../colors";

export type EvalRun = Schemas["EvalRunOut"];
export type EvalResult = Schemas["EvalResultOut"];
export type Case = Schemas["CaseOut"];
export type Comparison = Schemas["ComparisonOut"];

/** One (version, model) aggregate of a run's `summary`; the API types these as free JSON objects. */
export interface SummaryGroup {
  promptName: string;
  versionId: string;
  version: number;
  label: string;
  targetIndex: number;
  target: string;
  cases: number;
  completed: number;
  passed: number;
  failed: number;
  errors: number;
  passRate: number | null;
  meanScore: number | null;
  scorers?: Record<string, number>;
  latencyP50Ms?: number | null;
  latencyP95Ms?: number | null;
  costUsd: number;
}

/** One scorer's verdict on one case, as stored in a result's `scores`. */
export interface ScoreEntry {
  name?: string;
  type?: string;
  score?: number;
  passed?: boolean;
  weight?: number;
  reason?: string;
}

export const STATUSES = ["queued", "running", "completed", "failed", "cancelled"] as const;
export const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const POLL_MS = 1000;

const STATUS_COLOR: Record<string, string> = {
  completed: OK_COLOR,
  failed: CHANGE_COLOR.removed,
  cancelled: "gray.7",
  running: "blue.9",
  queued: CHANGE_COLOR.changed,
};

export function EvalStatusBadge({ status }: { status: string }) {
  return (
    <Badge color={STATUS_COLOR[status] ?? "gray.7"} miw="max-content">
      {status}
    </Badge>
  );
}

export function PassBadge({ passed, error }: { passed: boolean; error?: string | null }) {
  if (error) return <Badge color={CHANGE_COLOR.changed}>error</Badge>;
  return <Badge color={passed ? OK_COLOR : CHANGE_COLOR.removed}>{passed ? "pass" : "fail"}</Badge>;
}

/** A button the signed-in role may not use: still focusable (aria-disabled, so keyboard and pointer users get
 * the tooltip saying why), doing nothing when pressed. The server refuses the action anyway. */
export function GatedButton({
  allowed,
  reason,
  onClick,
  children,
  ...props
}: ButtonProps & { allowed: boolean; reason: string; onClick: () => void; children: ReactNode }) {
  if (allowed) return <Button {...props} onClick={onClick}>{children}</Button>;
  return (
    <Tooltip label={reason} events={{ hover: true, focus: true, touch: true }}>
      <Button {...props} data-disabled aria-disabled="true" onClick={(e) => e.preventDefault()}>
        {children}
      </Button>
    </Tooltip>
  );
}

export const groupsOf = (run: EvalRun) => (run.summary ?? []) as unknown as SummaryGroup[];
export const scoresOf = (result: EvalResult) => result.scores as ScoreEntry[];
export const scorerName = (s: ScoreEntry) => s.name || s.type || "?";

/** A fraction in [0, 1] as a percentage ("83.3%"); "—" when there is none yet. */
export function percent(value: number | null | undefined): string {
  return value == null ? "—" : `${(value * 100).toFixed(1).replace(/\.0$/, "")}%`;
}

/** An evaluation, polled every second until it reaches a final state, so progress moves without a reload. */
export function useEvalRun(runId: string) {
  return useQuery({
    queryKey: ["eval", runId],
    queryFn: () => unwrap(api.GET("/api/v1/evals/{run_id}", { params: { path: { run_id: runId } } })),
    refetchInterval: (query) => (query.state.data && TERMINAL.has(query.state.data.status) ? false : POLL_MS),
    enabled: Boolean(runId),
  });
}

/** Every result of a run, walking all pages (the export and the drill-down need more than the page shown). */
export async function fetchAllResults(runId: string): Promise<EvalResult[]> {
  const all: EvalResult[] = [];
  let cursor: string | undefined;
  do {
    const page = await unwrap(
      api.GET("/api/v1/evals/{run_id}/results", { params: { path: { run_id: runId }, query: { cursor, limit: 500 } } }),
    );
    all.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return all;
}

/** Every case of the dataset version a run was pinned to, by case key. */
export async function fetchCases(run: EvalRun): Promise<Map<string, Case>> {
  const pin = run.dataset as { name?: string; version?: number };
  const cases = new Map<string, Case>();
  if (!pin.name || !pin.version) return cases;
  let cursor: string | undefined;
  do {
    const page = await unwrap(
      api.GET("/api/v1/datasets/{name}/versions/{version}/cases", {
        params: { path: { name: pin.name, version: pin.version }, query: { cursor, limit: 1000 } },
      }),
    );
    for (const item of page.items) cases.set(item.key, item);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return cases;
}

export function useRunCases(run: EvalRun | undefined, enabled = true) {
  return useQuery({
    queryKey: ["eval", run?.id, "cases"],
    queryFn: () => fetchCases(run!),
    enabled: Boolean(run) && enabled,
    staleTime: Infinity,
  });
}

/** A JSON-ish value as one line of text (strings as they are). */
export function show(value: unknown): string {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** RFC 4180 CSV: fields with a comma, quote or line break are quoted, quotes doubled; CRLF between rows. Text
 * that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage return) gets a leading
 * apostrophe: model outputs and case inputs are untrusted. Numbers are written as they are. */
export function toCsv(rows: (string | number | boolean | null | undefined)[][]): string {
  const field = (v: string | number | boolean | null | undefined) => {
    let text = v === null || v === undefined ? "" : String(v);
    if (typeof v === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  return rows.map((row) => row.map(field).join(",")).join("\r\n") + "\r\n";
}

/** The CSV of a run's results: one row per (case, version, model) with input, expected, output and every
 * scorer's score and reason. Built in the browser from all result pages (the API has no CSV of results). */
export function resultsCsv(run: EvalRun, results: EvalResult[], cases: Map<string, Case>): string {
  const labels = new Map(groupsOf(run).map((g) => [g.versionId, g.label]));
  const scorers = [...new Set(results.flatMap((r) => scoresOf(r).map(scorerName)))];
  const header = [
    "case_key", "version", "model", "passed", "score", "input", "expected", "output", "error",
    ...scorers.flatMap((s) => [`${s}_score`, `${s}_reason`]),
    "latency_ms", "input_tokens", "output_tokens", "cost_usd", "cached",
  ];
  const rows = results.map((r) => {
    const byName = new Map(scoresOf(r).map((s) => [scorerName(s), s]));
    const item = cases.get(r.caseKey);
    return [
      r.caseKey, labels.get(r.versionId) ?? r.versionId, r.target, r.passed, r.score,
      show(item?.input), show(item?.expected), r.output ?? "",
      r.errorMessage ? `${r.errorClass ?? "error"}: ${r.errorMessage}` : "",
      ...scorers.flatMap((s) => [byName.get(s)?.score ?? "", byName.get(s)?.reason ?? ""]),
      Math.round(r.latencyMs), r.inputTokens, r.outputTokens, r.costUsd, r.cached,
    ];
  });
  return toCsv([header, ...rows]);
}

/** Offer a text as a file download. */
export function download(fileName: string, text: string, type = "text/csv") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Signed points ("+12", "-3.5", "0"). */
export function points(value: number): string {
  const text = Math.abs(value).toFixed(1).replace(/\.0$/, "");
  return value > 0 ? `+${text}` : value < 0 ? `-${text}` : "0";
}

/** How the comparison was decided, in words: the two tests the server ran and their settings. */
export function methodText(c: Comparison): string {
  const mcnemar = c.mcnemar as { method?: string; pValue?: number };
  const diff = c.scoreDiff as { confidence?: number; resamples?: number };
  const test = mcnemar.method === "chi2" ? "McNemar's chi-square test (continuity corrected)" : "McNemar's exact test";
  return `${test} on pass/fail, p = ${formatP(mcnemar.pValue ?? 1)}; paired bootstrap of the mean score difference (${(diff.resamples ?? 0).toLocaleString()} resamples, ${Math.round((diff.confidence ?? 0.95) * 100)}% interval)`;
}

export function formatP(p: number): string {
  return p < 0.001 ? "< 0.001" : p.toFixed(3);
}

/** The mean score difference with its interval, "+12 points, 95% interval [+3, +21]": B − A, or A − B when
 * `aMinusB` (so the winner's lead reads positive). */
export function intervalText(c: Comparison, aMinusB = false): string {
  const d = c.scoreDiff as { points: number; low: number; high: number; confidence: number };
  const [mid, low, high] = aMinusB ? [-d.points, -d.high, -d.low] : [d.points, d.low, d.high];
  return `${points(mid)} points, ${Math.round(d.confidence * 100)}% interval [${points(low)}, ${points(high)}]`;
}

/** The comparison in one sentence naming the winner (or none), e.g. "sentiment/few-shot@2 is better than
 * sentiment/few-shot@1: +12 points, 95% interval [+3, +21]". */
export function verdictHeadline(c: Comparison): string {
  const a = (c.a as { label: string }).label;
  const b = (c.b as { label: string }).label;
  if (c.winner === "B") return `${b} is better than ${a}: ${intervalText(c)}`;
  if (c.winner === "A") return `${a} is better than ${b}: ${intervalText(c, true)}`;
  return `No significant difference between ${a} and ${b}: ${b} − ${a} is ${intervalText(c)}`;
}
