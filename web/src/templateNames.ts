// Variable names a template uses, found in the browser for suggestions (the server's analysis decides).

/** Names used as `{{ name ... }}` in the texts (a suggestion list; the server's analysis is the authority). */
export function usedNames(texts: string[]): string[] {
  const found = new Set<string>();
  for (const text of texts) {
    for (const match of text.matchAll(/\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)/g)) found.add(match[1]);
  }
  return [...found].filter((name) => !["loop", "true", "false", "none", "range"].includes(name));
}
