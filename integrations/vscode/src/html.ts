// The results panel of "PromptOpt: Evaluate": plain HTML (no script), escaped, with a strict CSP.

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);
}

export interface CaseRow {
  index: number;
  input: string;
  expected: string | null;
  output: string | null;
  score: number;
  passed: boolean;
  error: string | null;
}

export interface ResultsView {
  subject: string;
  passRate: number;
  score: number;
  feedback: string;
  verdict: string;
  cases: CaseRow[];
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function resultsHtml(view: ResultsView): string {
  const rows = view.cases
    .map(
      (c) => `<tr class="${c.passed ? "pass" : "fail"}"><td>${c.index + 1}</td><td>${escapeHtml(c.input)}</td>` +
        `<td>${escapeHtml(c.expected ?? "")}</td><td>${escapeHtml(c.output ?? c.error ?? "")}</td>` +
        `<td>${c.score.toFixed(2)}</td><td>${c.passed ? "✓ pass" : "✗ fail"}</td></tr>`,
    )
    .join("\n");
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline';">
<title>PromptOpt: Evaluate</title>
<style>
body{font-family:var(--vscode-font-family,sans-serif);color:var(--vscode-foreground,#222);padding:0 1em}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #8884;padding:4px 6px;text-align:left;vertical-align:top;white-space:pre-wrap}
tr.fail td:last-child{color:#c33}tr.pass td:last-child{color:#2a2}.big{font-size:1.6em;font-weight:bold}
pre{white-space:pre-wrap}
</style></head><body>
<h2>PromptOpt: Evaluate <small>${escapeHtml(view.subject)}</small></h2>
<p><span class="big" id="pass-rate">${pct(view.passRate)}</span> passed · mean score ${view.score.toFixed(3)} · ${view.cases.length} case(s)</p>
<p id="verdict"><strong>Verdict:</strong> ${escapeHtml(view.verdict)}</p>
<pre id="feedback">${escapeHtml(view.feedback)}</pre>
<table><thead><tr><th>#</th><th>Input</th><th>Expected</th><th>Output</th><th>Score</th><th>Result</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</body></html>`;
}
