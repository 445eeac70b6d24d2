// The dashboards' pure parts: the time range kept in the address, and turning the aggregate API's answers
// (one point per bucket and key) into chart rows and readable labels. Buckets are UTC, so labels are too.
import type { Schemas } from "../../api/client";

export type Usage = Schemas["UsageSeriesOut"];
export type Bucket = Usage["bucket"];
export type GroupBy = Usage["groupBy"];
export type RangeName = "24h" | "7d" | "30d" | "90d" | "custom";

export const RANGES: { value: RangeName; label: string; hours: number }[] = [
  { value: "24h", label: "Last 24 hours", hours: 24 },
  { value: "7d", label: "Last 7 days", hours: 24 * 7 },
  { value: "30d", label: "Last 30 days", hours: 24 * 30 },
  { value: "90d", label: "Last 90 days", hours: 24 * 90 },
  { value: "custom", label: "Custom", hours: 0 },
];
export const GROUPS: { value: GroupBy; label: string }[] = [
  { value: "model", label: "Model" },
  { value: "prompt", label: "Prompt" },
  { value: "version", label: "Prompt version" },
  { value: "source", label: "Source" },
  { value: "none", label: "Nothing (all runs)" },
];
const HOUR = 3600_000;

export interface Range {
  name: RangeName;
  from: string;
  to: string;
  bucket: Bucket;
}

/** The bucket that gives a readable number of points for a span of `hours`. */
export function autoBucket(hours: number): Bucket {
  if (hours <= 24 * 7) return "hour";
  if (hours <= 24 * 180) return "day";
  return "week";
}

/** The range the address asks for: a named range ending at `now` (whole minutes, so the query key is stable
 * while the page is open), or a custom from/to; `bucket` in the address overrides the automatic one. */
export function rangeFrom(params: URLSearchParams, now: number): Range {
  const asked = params.get("range") as RangeName | null;
  const preset = RANGES.find((r) => r.value === asked && r.value !== "custom");
  let from: string, to: string, name: RangeName;
  if (asked === "custom" && params.get("from") && params.get("to")) {
    name = "custom";
    from = params.get("from")!;
    to = params.get("to")!;
  } else {
    const chosen = preset ?? RANGES[1];
    name = chosen.value;
    // The end of the current minute: a range ending at the minute's start would leave out the runs of this very
    // minute, and all of the current hour when that minute is the hour's first (the server counts whole hours).
    const end = Math.floor(now / 60_000) * 60_000 + 60_000;
    to = new Date(end).toISOString();
    from = new Date(end - chosen.hours * HOUR).toISOString();
  }
  const hours = (Date.parse(to) - Date.parse(from)) / HOUR;
  const bucketParam = params.get("bucket");
  const bucket = bucketParam === "hour" || bucketParam === "day" || bucketParam === "week" ? bucketParam : autoBucket(hours);
  return { name, from, to, bucket };
}

/** A bucket's start as a short UTC label. */
export function bucketLabel(iso: string, bucket: Bucket): string {
  const d = new Date(iso);
  const date = `${String(d.getUTCMonth() + 1).padStart(2, "0")}-${String(d.getUTCDate()).padStart(2, "0")}`;
  if (bucket === "hour") return `${date} ${String(d.getUTCHours()).padStart(2, "0")}:00`;
  return bucket === "week" ? `wk ${date}` : date;
}

export type Row = Record<string, string | number | null>;

/** One chart row per bucket with a column per key holding `value` of that key's point. */
export function pivot(usage: Usage, value: (p: Usage["series"][number]) => number | null): Row[] {
  const rows = new Map<string, Row>();
  for (const b of usage.buckets) rows.set(b, { bucket: bucketLabel(b, usage.bucket) });
  for (const point of usage.series) {
    const row = rows.get(point.bucketStart);
    if (row) row[point.key] = value(point);
  }
  return [...rows.values()];
}

/** Rows of the all-runs usage (groupBy none): successes and failures, error rate and latency per bucket. */
export function totalsRows(usage: Usage): Row[] {
  return usage.series.map((p) => ({
    bucket: bucketLabel(p.bucketStart, usage.bucket),
    ok: p.runs - p.errors,
    errors: p.errors,
    errorRate: p.errorRate == null ? null : round(p.errorRate * 100, 2),
    p50: p.latencyMsP50,
    p95: p.latencyMsP95,
    avg: p.latencyMsAvg,
  }));
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function money(value: number): string {
  if (value === 0) return "$0";
  return value >= 1 ? `$${value.toFixed(2)}` : `$${value.toPrecision(3)}`;
}

export function ms(value: number | null | undefined): string {
  return value == null ? "—" : `${Math.round(value)} ms`;
}

export function pct(value: number | null | undefined): string {
  return value == null ? "—" : `${round(value * 100, 1)}%`;
}

export const SERIES_COLORS = ["blue.8", "orange.8", "grape.8", "teal.8", "red.8", "cyan.8", "lime.9", "pink.8", "indigo.8", "yellow.9", "gray.7"];
