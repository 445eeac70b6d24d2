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
