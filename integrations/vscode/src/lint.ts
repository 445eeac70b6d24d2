// Lint diagnostics for `.prompt.md` files: the body after the front matter goes to `POST /api/v1/lint` (nothing
// is saved) and every finding becomes a diagnostic on the document's line.
import type { Api } from "./client.js";
import { promptFileBody } from "./commands/evaluate.js";

export interface LintFinding {
  rule: string;
  name: string;
  severity: "error" | "warning" | "info";
  message: string;
  line: number | null;
  hint: string;
}

export interface LintDiagnostic {
  /** 0-based line in the document (front matter included). */
  line: number;
  severity: "error" | "warning" | "info";
  message: string;
  code: string;
}

/** The variables a template uses (`{{ name }}`, `{{ name.field }}`, `{{ name | filter }}`), declared for lint. */
export function usedVariables(template: string): string[] {
  const names = new Set<string>();
  for (const match of template.matchAll(/\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(match[1]);
  return [...names];
}

export async function lintPromptFile(api: Api, document: string): Promise<LintDiagnostic[]> {
  const body = promptFileBody(document);
  if (!body) return [];
  const offset = document.slice(0, document.indexOf(body)).split("\n").length - 1;
  const answer = await api.post<{ findings: LintFinding[] }>("/api/v1/lint", {
    kind: "text",
    template: body,
    variables: usedVariables(body).map((name) => ({ name })),
  });
  const lastLine = document.split("\n").length - 1;
  return answer.findings.map((f) => ({
    line: Math.min(lastLine, offset + Math.max(0, (f.line ?? 1) - 1)),
    severity: f.severity,
    message: f.hint ? `${f.message} (${f.hint})` : f.message,
    code: `${f.rule} ${f.name}`,
  }));
}
