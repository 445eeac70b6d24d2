// Prompt search as the address keeps it (`/search?q=…&mode=…&tag=…&label=…&project=*&allVersions=true&page=2`),
// what the API is asked for, and the small wordings the search views share. No React here: unit-tested as is.
import type { Query, Schemas } from "./api/client";

export type Mode = "hybrid" | "text" | "semantic";
export const MODES: { value: Mode; label: string; hint: string }[] = [
  { value: "hybrid", label: "Hybrid", hint: "Words and meaning, ranked together" },
  { value: "text", label: "Words", hint: "Prompts that contain the words" },
  { value: "semantic", label: "Meaning", hint: "Prompts that mean about the same, whatever the words" },
];
export const PAGE_SIZE = 20;
/** The server refuses longer queries (422); the box stops there. */
export const MAX_QUERY_CHARS = 1000;
/** The server pages at most this far (offset ≤ 1000). */
const MAX_OFFSET = 1000;

export interface SearchState {
  q: string;
  mode: Mode;
  tags: string[];
  labels: string[];
  /** Every project the user can read (`project=*`), not just the current one. */
  allProjects: boolean;
  /** Also match older versions' text and commit messages. */
  allVersions: boolean;
  /** 1-based. */
  page: number;
}

function isMode(value: string | null): value is Mode {
  return value === "hybrid" || value === "text" || value === "semantic";
}

function unique(values: string[]): string[] {
  return [...new Set(values.map((v) => v.trim()).filter(Boolean))];
}

/** The search the address describes; anything malformed falls back to the default. */
export function readSearch(params: URLSearchParams): SearchState {
  const page = Number.parseInt(params.get("page") ?? "1", 10);
  const mode = params.get("mode");
  return {
    q: (params.get("q") ?? "").trim().slice(0, MAX_QUERY_CHARS),
    mode: isMode(mode) ? mode : "hybrid",
    tags: unique(params.getAll("tag")),
    labels: unique(params.getAll("label")),
    allProjects: params.getAll("project").includes("*"),
    allVersions: params.get("allVersions") === "true",
    page: Number.isFinite(page) && page >= 1 ? Math.min(page, lastPage(MAX_OFFSET + PAGE_SIZE)) : 1,
  };
}

/** The address of a search: `q` and `mode` always, the rest only when not the default. */
export function searchHref(state: Partial<SearchState> & { q: string }): string {
  const params = new URLSearchParams({ q: state.q.trim(), mode: state.mode ?? "hybrid" });
  for (const tag of unique(state.tags ?? [])) params.append("tag", tag);
  for (const label of unique(state.labels ?? [])) params.append("label", label);
  if (state.allProjects) params.set("project", "*");
  if (state.allVersions) params.set("allVersions", "true");
  if (state.page && state.page > 1) params.set("page", String(state.page));
  return `/search?${params.toString()}`;
}

/** The query parameters of `GET /api/v1/search` for a search (only called with a non-empty `q`). */
export function apiQuery(state: SearchState): Query<"/api/v1/search"> {
  return {
    q: state.q,
    mode: state.mode,
    tag: state.tags.length ? state.tags : undefined,
    label: state.labels.length ? state.labels : undefined,
    project: state.allProjects ? ["*"] : undefined,
    allVersions: state.allVersions || undefined,
    limit: PAGE_SIZE,
    offset: (state.page - 1) * PAGE_SIZE,
  };
}

/** The number of pages `total` results fill (the server ranks up to 100 per ranking). */
export function lastPage(total: number): number {
  return Math.max(1, Math.ceil(total / PAGE_SIZE));
}

/** "Results 21–40 of 45" for a page of `count` items. */
export function rangeText(page: number, count: number, total: number): string {
  if (count === 0) return `No results of ${total}`;
  const first = (page - 1) * PAGE_SIZE + 1;
  return `Results ${first}–${first + count - 1} of ${total}`;
}

/** A similarity (0–1) as a whole percentage; never rounds a near match up to a claimed 100%. */
export function percent(similarity: number): string {
  const value = Math.max(0, Math.min(1, similarity)) * 100;
  const shown = value < 100 ? Math.min(Math.round(value), 99) : 100;
  return `${shown}%`;
}

/** Why a result is there, for people: which ranking found it and how close its meaning is. */
export function matchSummary(hit: Pick<Schemas["SearchHitOut"], "textRank" | "semanticRank" | "similarity">): string {
  const parts: string[] = [];
  if (hit.textRank != null) parts.push(`words #${hit.textRank}`);
  if (hit.semanticRank != null) parts.push(`meaning #${hit.semanticRank}`);
  if (hit.similarity != null) parts.push(`${percent(hit.similarity)} similar in meaning`);
  return parts.length ? `Matched by ${parts.join(", ")}` : "";
}

/** What a keystroke does to the global search box: "/" focuses it unless the user is typing somewhere;
 * Ctrl+K / ⌘K focuses it from anywhere. */
export function isSearchShortcut(event: {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  altKey: boolean;
  shiftKey?: boolean;
  target: EventTarget | null;
}): boolean {
  if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "k") return true;
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return false;
  return !isEditable(event.target);
}

/** Where "/" is a character being typed: text fields, editors (CodeMirror is contenteditable), comboboxes. */
const TYPING = [
  ...["", "text", "search", "email", "url", "tel", "password", "number"].map((type) => (type ? `input[type='${type}']` : "input:not([type])")),
  "textarea",
  "select",
  "[contenteditable]:not([contenteditable='false'])",
  "[role='textbox']",
  "[role='combobox']",
].join(", ");

function isEditable(target: EventTarget | null): boolean {
  if (!target || typeof (target as Element).closest !== "function") return false;
  const element = target as HTMLElement;
  return element.isContentEditable === true || element.closest(TYPING) !== null;
}

/** The duplicates view's score floor from the address: 0.05–1 (what the server takes), else null (the server's
 * default, which depends on its embedding model: 0.27 for the default model). */
export function readThreshold(value: string | null): number | null {
  const parsed = value === null || value.trim() === "" ? Number.NaN : Number(value);
  return Number.isFinite(parsed) && parsed >= 0.05 && parsed <= 1 ? parsed : null;
}
export const THRESHOLDS = [0.2, 0.35, 0.5, 0.7];
/** How strict a duplicate-score floor is, in words, next to the server's default floor. */
export function thresholdLabel(threshold: number, serverDefault: number): string {
  const name = threshold === serverDefault ? "default" : threshold < serverDefault ? "loose" : threshold < 0.5 ? "strict" : "very strict";
  return `${threshold.toFixed(2)} (${name})`;
}
