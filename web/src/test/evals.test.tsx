import { MantineProvider } from "@mantine/core";
import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { MemoryRouter } from "react-router";
import { EvalHistory, chartRows, historyPoints } from "../components/EvalHistory";
import { ProgressPanel } from "../pages/EvalRunPage";
import { SCORER_TYPES, mergeScorerTypes, newDraft, parseValue, toSpec } from "../pages/evals/scorers";
import { intervalText, resultsCsv, toCsv, verdictHeadline, type Case, type Comparison, type EvalResult, type EvalRun } from "../pages/evals/shared";

function run(overrides: Partial<EvalRun> = {}): EvalRun {
  return {
    id: "evr_1",
    name: "sentiment/few-shot@1 on reviews@1",
    status: "completed",
    datasetId: "ds_1",
    datasetVersionId: "dsv_1",
    dataset: { name: "reviews", version: 1 },
    versions: [{ label: "sentiment/few-shot@1", versionId: "ver_1" }],
    scorers: [{ type: "label" }],
    concurrency: 4,
    passThreshold: 1,
    totalCells: 2,
    doneCells: 2,
    errorCells: 0,
    progress: 1,
    cancelRequested: false,
    attempts: 1,
    error: null,
    summary: [
      { promptName: "sentiment/few-shot", versionId: "ver_1", version: 1, label: "sentiment/few-shot@1", targetIndex: 0, target: "local/gemma-3-270m", cases: 2, completed: 2, passed: 1, failed: 1, errors: 0, passRate: 0.5, meanScore: 0.5, costUsd: 0 },
    ],
    createdBy: null,
    createdAt: "2026-01-01T00:00:00Z",
    startedAt: "2026-01-01T00:00:00Z",
    finishedAt: "2026-01-01T00:01:00Z",
    ...overrides,
  };
}

function result(caseKey: string, passed: boolean, output: string): EvalResult {
  return {
    id: `res_${caseKey}`,
    caseId: `case_${caseKey}`,
    caseKey,
    versionId: "ver_1",
    targetIndex: 0,
    target: "local/gemma-3-270m",
    output,
    scores: [{ name: "label", type: "label", score: passed ? 1 : 0, passed, weight: 1, reason: passed ? "label matches" : 'read "neutral", expected "negative"' }],
    score: passed ? 1 : 0,
    passed,
    latencyMs: 12.4,
    inputTokens: 30,
    outputTokens: 2,
    costUsd: 0,
    cached: false,
    errorClass: null,
    errorMessage: null,
    runId: "run_1",
    createdAt: "2026-01-01T00:00:00Z",
  };
}

function comparison(winner: "A" | "B" | null, points: number, low: number, high: number): Comparison {
  return {
    a: { label: "p@1", evalRunId: "evr_1" },
    b: { label: "p@2", evalRunId: "evr_2" },
    cases: 20,
    aPassRate: 0.5,
    bPassRate: 0.62,
    aMeanScore: 0.5,
    bMeanScore: 0.62,
    mcnemar: { aOnly: 1, bOnly: 4, both: 9, neither: 6, pValue: 0.375, method: "exact" },
    scoreDiff: { points, low, high, confidence: 0.95, resamples: 10000 },
    significant: winner !== null,
    winner,
    verdict: "server words",
    casesNeeded: null,
    flipped: [],
  };
}

describe("scorer specs from the form", () => {
  it("reads values as JSON when they are JSON, else as text", () => {
    expect(parseValue("")).toBeUndefined();
    expect(parseValue("12")).toBe(12);
    expect(parseValue('["a", "b"]')).toEqual(["a", "b"]);
    expect(parseValue("positive")).toBe("positive");
  });

  it("builds a spec with threshold, weight, negate and typed options", () => {
    const draft = { ...newDraft("numeric"), value: "42", threshold: "0.5", weight: "2", negate: true, options: { tolerance: "0.5", pick: "last" } };
    expect(toSpec(draft)).toEqual({ type: "numeric", value: 42, threshold: 0.5, weight: 2, negate: true, options: { tolerance: 0.5, pick: "last" } });
    const label = { ...newDraft("label"), name: "sentiment", options: { labels: '["positive","negative"]', exact: true } };
    expect(toSpec(label)).toEqual({ type: "label", name: "sentiment", weight: 1, negate: false, options: { labels: ["positive", "negative"], exact: true } });
  });

  it("names the field that cannot be read", () => {
    expect(() => toSpec({ ...newDraft("numeric"), options: { tolerance: "lots" } })).toThrow("numeric: options.tolerance must be a number");
    expect(() => toSpec({ ...newDraft("label"), options: { labels: "[oops" } })).toThrow("label: options.labels must be JSON");
    expect(() => toSpec({ ...newDraft("label"), threshold: "high" })).toThrow("threshold");
  });

  it("lists every scorer once with a description", () => {
    const types = SCORER_TYPES.map((s) => s.type);
    expect(new Set(types).size).toBe(types.length);
    expect(types).toEqual(expect.arrayContaining(["label", "equals", "regex", "json-schema", "llm-rubric", "similar"]));
    expect(SCORER_TYPES.every((s) => s.description.length > 10)).toBe(true);
  });
});

describe("CSV export", () => {
  it("quotes commas, quotes and line breaks", () => {
    expect(toCsv([["a", 'say "hi"', "x,y", "two\nlines", null, 3, true]])).toBe('a,"say ""hi""","x,y","two\nlines",,3,true\r\n');
    expect(toCsv([["=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", -1.5]])).toBe(
      `"'=HYPERLINK(""http://x"")",'+cmd|' /C calc'!A0,'-2+3,'@SUM(A1),-1.5\r\n`,
    );
  });

  it("has one row per result with input, expected, output and each scorer's score and reason", () => {
    const cases = new Map<string, Case>([
      ["r1", { id: "c1", key: "r1", position: 0, input: { review: "Great, really" }, expected: "positive", tags: [], metadata: {}, sourceRunId: null }],
    ]);
    const csv = resultsCsv(run(), [result("r1", true, "positive"), result("r2", false, "neutral")], cases);
    const lines = csv.trimEnd().split("\r\n");
    expect(lines[0]).toBe("case_key,version,model,passed,score,input,expected,output,error,label_score,label_reason,latency_ms,input_tokens,output_tokens,cost_usd,cached");
    expect(lines[1]).toBe('r1,sentiment/few-shot@1,local/gemma-3-270m,true,1,"{""review"":""Great, really""}",positive,positive,,1,label matches,12,30,2,0,false');
    expect(lines[2]).toBe('r2,sentiment/few-shot@1,local/gemma-3-270m,false,0,,,neutral,,0,"read ""neutral"", expected ""negative""",12,30,2,0,false');
  });
});

describe("comparison in words", () => {
  it("names the better version with the difference and its interval", () => {
    expect(verdictHeadline(comparison("B", 12, 3, 21))).toBe("p@2 is better than p@1: +12 points, 95% interval [+3, +21]");
    expect(verdictHeadline(comparison("A", -8.5, -14, -2))).toBe("p@1 is better than p@2: +8.5 points, 95% interval [+2, +14]");
    expect(verdictHeadline(comparison(null, 1, -4, 6))).toBe("No significant difference between p@1 and p@2: p@2 − p@1 is +1 points, 95% interval [-4, +6]");
    expect(intervalText(comparison(null, 0, 0, 0))).toBe("0 points, 95% interval [0, 0]");
  });
});

describe("evaluation history", () => {
  it("keeps the newest completed run per version and model, and charts mean scores in percent", () => {
    const newer = run({ id: "evr_2", summary: [{ ...(run().summary![0] as object), meanScore: 0.75, passRate: 0.75 }, { promptName: "other", versionId: "ver_9", version: 1, target: "local/gemma-3-270m", meanScore: 0.1 }] });
    const v2 = run({ id: "evr_3", summary: [{ ...(run().summary![0] as object), versionId: "ver_2", version: 2, meanScore: 0.9, passRate: 0.9 }] });
    const running = run({ id: "evr_4", status: "running" });
    const points = historyPoints("sentiment/few-shot", [running, v2, newer, run()]);
    expect(points.map((p) => [p.version, p.runId, p.meanScore])).toEqual([
      [1, "evr_2", 0.75],
      [2, "evr_3", 0.9],
    ]);
    expect(chartRows(points)).toEqual({
      rows: [
        { version: "v1", "local/gemma-3-270m": 75 },
        { version: "v2", "local/gemma-3-270m": 90 },
      ],
      targets: ["local/gemma-3-270m"],
    });
  });
});

describe("ProgressPanel", () => {
  it("shows done / total, errors and failures, with labelled progress bars", () => {
    const working = run({ status: "running", totalCells: 10, doneCells: 3, errorCells: 1, progress: 0.3, finishedAt: null });
    render(
      <MantineProvider>
        <ProgressPanel run={working} />
      </MantineProvider>,
    );
    expect(screen.getByTestId("progress-text")).toHaveTextContent("3 of 10 done (30%) · 1 failed with an error · 1 did not pass · updating…");
    expect(screen.getByRole("progressbar", { name: "2 cells done" })).toHaveAttribute("aria-valuenow", "20");
    expect(screen.getByRole("progressbar", { name: "1 cell failed with an error" })).toHaveAttribute("aria-valuenow", "10");
  });
});

describe("EvalHistory", () => {
  it("titles the chart with its dataset and lists the same scores in a table", () => {
    const client = new QueryClient();
    const v2 = run({ id: "evr_2", name: "second", summary: [{ ...(run().summary![0] as object), versionId: "ver_2", version: 2, meanScore: 0.9, passRate: 0.8 }] });
    // the answer of GET /api/v1/evals?prompt=...&status=completed, as the component asks for it
    client.setQueryData(["evals", { prompt: "sentiment/few-shot", status: "completed", limit: 200 }], { items: [v2, run()], nextCursor: null });
    render(
      <MantineProvider>
        <QueryClientProvider client={client}>
          <MemoryRouter>
            <EvalHistory promptName="sentiment/few-shot" />
          </MemoryRouter>
        </QueryClientProvider>
      </MantineProvider>,
    );
    expect(screen.getByRole("figure", { name: "Mean score per version on reviews@1" })).toBeInTheDocument();
    const rows = screen.getAllByRole("row").slice(1).map((row) => row.textContent);
    expect(rows).toEqual([
      expect.stringMatching(/^v1local\/gemma-3-270m50%50%sentiment\/few-shot@1 on reviews@1/),
      expect.stringMatching(/^v2local\/gemma-3-270m90%80%second/),
    ]);
    expect(screen.getByRole("link", { name: "second" })).toHaveAttribute("href", "/evals/evr_2");
  });
});

describe("mergeScorerTypes", () => {
  it("takes the server's types and keeps this file's option hints", () => {
    const merged = mergeScorerTypes([
      { type: "label", aliases: [], builtin: true, description: "server words", defaultThreshold: 1, valueKind: "reference", options: ["exact", "labels"] },
      { type: "acme-tone", aliases: [], builtin: false, description: "an operator's scorer", defaultThreshold: 0.5, valueKind: "optional", options: [] },
    ]);
    expect(merged.map((t) => t.type)).toEqual(["label", "acme-tone"]);
    expect(merged[0].description).toBe("server words");
    expect(merged[0].options.find((o) => o.name === "exact")?.kind).toBe("boolean");
    expect(merged[1]).toMatchObject({ valueKind: "optional", defaultThreshold: 0.5, options: [] });
    const spec = toSpec({ ...newDraft("acme-tone"), value: "polite" }, new Map(merged.map((t) => [t.type, t])));
    expect(spec).toMatchObject({ type: "acme-tone", value: "polite", options: {} });
  });
});
