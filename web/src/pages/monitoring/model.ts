// The monitoring page's pure parts: the range kept in the address, and the series API's answer turned into chart
// rows (one per bucket, every version summed) and version rows; drift signals into readable rows.
import type { Schemas } from "../../api/client";
import { bucketLabel, round } from "../dashboards/model";

export type Series = Schemas["MonitoringSeriesOut"];
export type Stats = Schemas["MonitoringStatsOut"];
export type Drift = Schemas["DriftReportOut"];
export type MonitorRange = "24h" | "7d" | "30d";

export const MONITOR_RANGES: { value: MonitorRange; label: string; hours: number; bucket: "hour" | "day" }[] = [
  { value: "24h", label: "Last 24 hours", hours: 24, bucket: "hour" },
  { value: "7d", label: "Last 7 days", hours: 24 * 7, bucket: "hour" },
  { value: "30d", label: "Last 30 days", hours: 24 * 30, bucket: "day" },
];

export const DRIFT_WINDOWS: { value: string; label: string; window: number; baseline: number }[] = [
  { value: "1h", label: "Last hour vs the 24 hours before", window: 60, baseline: 24 * 60 },
  { value: "1d", label: "Last day vs the 7 days before", window: 24 * 60, baseline: 7 * 24 * 60 },
  { value: "7d", label: "Last 7 days vs the 28 days before", window: 7 * 24 * 60, baseline: 28 * 24 * 60 },
];

export interface MonitorQuery {
  prompt: string;
  label: string;
  range: MonitorRange;
  from: string;
  to: string;
  bucket: "hour" | "day";
}

/** What the address asks for; the range ends at the end of the current minute (a stable query key). */
export function monitorQuery(params: URLSearchParams, now: number): MonitorQuery {
  const range = MONITOR_RANGES.find((r) => r.value === params.get("range")) ?? MONITOR_RANGES[1];
  const end = Math.floor(now / 60_000) * 60_000 + 60_000;
  return {
    prompt: (params.get("prompt") ?? "").trim(),
    label: (params.get("label") ?? "").trim() || "production",
    range: range.value,
    from: new Date(end - range.hours * 3600_000).toISOString(),
    to: new Date(end).toISOString(),
    bucket: range.bucket,
  };
}

export interface ChartRow {
  bucket: string;
  runs: number;
  ok: number;
  errors: number;
  errorRate: number | null;
  p50: number | null;
  p95: number | null;
  cost: number;
  tokens: number;
  feedback: number | null;
  feedbackCount: number;
  passRate: number | null;
  scored: number;
}

/** One row per bucket of the whole label (every version summed): what the charts draw. Rates are percent. */
export function chartRows(series: Series): ChartRow[] {
  return series.overall.map((p) => ({
    bucket: bucketLabel(p.bucketStart, series.bucket),
    runs: p.runs,
    ok: p.runs - p.errors,
    errors: p.errors,
    errorRate: p.errorRate == null ? null : round(p.errorRate * 100, 2),
    p50: p.latencyP50Ms,
    p95: p.latencyP95Ms,
    cost: round(p.costUsd, 6),
    tokens: p.tokens,
    feedback: p.feedbackMean,
    feedbackCount: p.feedbackScored,
    passRate: p.onlineEvalPassRate == null ? null : round(p.onlineEvalPassRate * 100, 1),
    scored: p.onlineScored,
  }));
}

/** "since 12-01 10:00" / "12-01 10:00 to 12-02 08:00" for a version's serving intervals (UTC). */
export function servingText(version: Series["versions"][number]): string {
  if (version.serving.length === 0) return "—";
  return version.serving
    .map((s) => (s.end ? `${bucketLabel(s.start, "hour")} to ${bucketLabel(s.end, "hour")}` : `since ${bucketLabel(s.start, "hour")}`))
    .join("; ");
}

export interface SignalRow {
  name: string;
  title: string;
  drifted: boolean;
  statistic: string;
  detail: string;
}

const SIGNAL_TITLES: Record<string, string> = {
  output_label_chi2: "Output labels (chi-square)",
  output_label_psi: "Output labels (PSI)",
  output_length: "Output length",
  refusal_rate: "Refusal rate",
  online_score: "Online score",
  input_length: "Input length",
  input_embedding: "Input meaning (embeddings)",
  latency_change: "Latency",
  cost_change: "Cost per run",
};

export function signalRows(report: Drift): SignalRow[] {
  return report.signals.map((s) => ({
    name: s.name,
    title: SIGNAL_TITLES[s.name] ?? s.name,
    drifted: s.drifted,
    statistic: `${round(s.statistic, 4)} (threshold ${s.threshold})`,
    detail: s.detail,
  }));
}
