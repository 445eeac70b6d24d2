import type { Schemas } from "./api/client";

/** Deep links: a prompt name keeps its folders as path segments, each one escaped. */
export function promptUrl(name: string, tab?: string): string {
  const path = `/prompts/${name.split("/").map(encodeURIComponent).join("/")}`;
  return tab ? `${path}?tab=${tab}` : path;
}

/** The playground pre-filled with a prompt at a version number or a label. */
export function playgroundUrl(name: string, at?: { version?: number; label?: string }): string {
  const params = new URLSearchParams({ prompt: name });
  if (at?.version) params.set("version", String(at.version));
  else if (at?.label) params.set("label", at.label);
  return `/playground?${params}`;
}

export function optimizeUrl(tab: "optimize" | "generate" | "refine", prompt?: string): string {
  const params = new URLSearchParams({ tab });
  if (prompt) params.set("prompt", prompt);
  return `/optimize?${params.toString()}`;
}

/** What a save hands to the prompt page it opens (history state): the version written and the prompts it nearly
 * duplicates, for the page's warning. */
export interface SavedState {
  name: string;
  version: number;
  nearDuplicates: Schemas["NearDuplicateOut"][];
}

/** The saved-version state a navigation carried, if it is one (history state outlives a reload: check its shape). */
export function savedState(state: unknown): SavedState | null {
  const saved = (state as { saved?: unknown } | null)?.saved as Partial<SavedState> | undefined;
  if (!saved || typeof saved.name !== "string" || typeof saved.version !== "number" || !Array.isArray(saved.nearDuplicates)) return null;
  return saved as SavedState;
}
