// What the optimizer pages compute from the API's answers (pure functions, tested in src/test/optimize.test.tsx).
import type { Schemas } from "../../api/client";

export type Optimization = Schemas["OptimizationOut"];
export type Candidate = Schemas["CandidateOut"];

export const ACTIVE_STATUSES = new Set(["queued", "running"]);
/** How often a running optimization is asked for news. */
export const POLL_MS = 1500;

/** One point of the trajectory: after `calls` model calls, the best training score found so far. */
export type TrajectoryPoint = { calls: number; best: number; score: number | null; strategy: string; candidateId: string };

/** Candidates in the order they were made, with the calls spent so far and the best training score so far.
 * A candidate without a training score yet (proposed, screened out, skipped) adds its calls but no score. */
export function trajectoryPoints(candidates: readonly Candidate[]): TrajectoryPoint[] {
  const ordered = [...candidates].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  const points: TrajectoryPoint[] = [];
  let calls = 0;
  let best: number | null = null;
  for (const candidate of ordered) {
    calls += candidate.calls;
    const score = candidate.trainScore ?? null;
    if (score !== null && (best === null || score > best)) best = score;
    if (best !== null) points.push({ calls, best, score, strategy: candidate.strategy, candidateId: candidate.id });
  }
  return points;
}

export type Winner = { versionId: string; version: number | null; candidateId: string | null; keptBaseline: boolean };

type WinnerReport = { version?: number; candidateId?: string } | undefined;

/** The version the optimization ended with: the saved winner, or the starting version when nothing beat it.
 * Null while it runs, and when it failed or was cancelled. */
export function winnerOf(optimization: Optimization): Winner | null {
  if (optimization.status !== "completed") return null;
  const report = optimization.report as { winner?: WinnerReport; keptBaseline?: boolean };
  if (optimization.winnerVersionId) {
    return {
      versionId: optimization.winnerVersionId,
      version: report.winner?.version ?? null,
      candidateId: report.winner?.candidateId ?? optimization.bestCandidateId,
      keptBaseline: false,
    };
  }
  const spec = optimization.spec as { version?: number };
  return { versionId: optimization.baseVersionId, version: spec.version ?? null, candidateId: null, keptBaseline: true };
}

/** The prompt name an optimization works on (pinned in its spec). */
export function promptNameOf(optimization: Optimization): string {
  return String((optimization.spec as { promptName?: string }).promptName ?? optimization.promptId);
}

export function score(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : value.toFixed(3);
}

/** The address of the optimizer's tabs: `/optimize?tab=refine&prompt=sentiment/few-shot` opens the refine form
 * for that prompt (`tab` is optimize | generate | refine; `prompt` fills the prompt field of that tab). */
/** A model target from the form's "provider/model" text ("model" alone is a local model) and an optional cap on
 * answer tokens. Both empty: undefined, i.e. the server's default (the prompt's own model configuration, else the
 * embedded local model); a cap without a model applies to the server's default target model (local). */
export function modelTarget(text: string, maxTokens: number | string = ""): Schemas["ModelTarget"] | undefined {
  const trimmed = text.trim();
  const tokens = typeof maxTokens === "number" ? maxTokens : Number.parseInt(maxTokens, 10);
  const params = Number.isInteger(tokens) && tokens > 0 ? { max_tokens: tokens } : undefined;
  if (!trimmed) return params && { params };
  const slash = trimmed.indexOf("/");
  const target = slash > 0 ? { provider: trimmed.slice(0, slash), model: trimmed.slice(slash + 1) } : { provider: "local", model: trimmed };
  return params ? { ...target, params } : target;
}
