/** Deep links: a prompt name keeps its folders as path segments, each one escaped. */
export function promptUrl(name: string, tab?: string): string {
  const path = `/prompts/${name.split("/").map(encodeURIComponent).join("/")}`;
  return tab ? `${path}?tab=${tab}` : path;
}
