import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { DriftPanel } from "../pages/MonitoringPage";
import { chartRows, monitorQuery, servingText, signalRows, type Drift, type Series, type Stats } from "../pages/monitoring/model";
import { network } from "./network";


const NOW = Date.parse("2026-12-02T20:44:31.500Z");

function stats(runs: number, errors: number, extra: Partial<Stats> = {}): Stats {
  return {
    runs,
    errors,
    errorRate: runs ? errors / runs : null,
    inputTokens: runs * 10,
    outputTokens: runs,
    tokens: runs * 11,
    costUsd: runs * 0.001,
    latencyMsAvg: runs ? 120 : null,
    latencyP50Ms: runs ? 100 : null,
    latencyP95Ms: runs ? 300 : null,
    feedbackCount: 0,
    feedbackScored: 0,
    feedbackMean: null,
    thumbsUp: 0,
    thumbsDown: 0,
    onlineScored: 0,
    onlinePassed: 0,
    onlineFailed: 0,
    onlineEvalPassRate: null,
    onlineScoreMean: null,
    ...extra,
  };
}

describe("monitorQuery", () => {
  it("reads prompt, label and range from the address with production and 7 days by default", () => {
    const q = monitorQuery(new URLSearchParams("prompt=support/triage"), NOW);
    expect(q).toEqual({
      prompt: "support/triage",
      label: "production",
      range: "7d",
      from: "2026-11-25T20:45:00.000Z",
      to: "2026-12-02T20:45:00.000Z",
      bucket: "hour",
    });
    const month = monitorQuery(new URLSearchParams("prompt=a&label=*&range=30d"), NOW);
    expect([month.label, month.bucket]).toEqual(["*", "day"]);
    expect(monitorQuery(new URLSearchParams("range=bogus"), NOW).range).toBe("7d");
  });
});

describe("chart rows", () => {
  const series = {
    promptId: "prm_1",
    promptName: "support/triage",
    label: "production",
    from: "2026-12-02T00:00:00Z",
    to: "2026-12-02T02:00:00Z",
    bucket: "hour",
    buckets: ["2026-12-02T00:00:00Z", "2026-12-02T01:00:00Z"],
    versions: [
      { versionId: "ver_1", version: 1, serving: [{ start: "2026-12-01T08:00:00Z", end: "2026-12-02T01:00:00Z" }], totals: stats(4, 1) },
      { versionId: "ver_2", version: 2, serving: [{ start: "2026-12-02T01:00:00Z", end: null }], totals: stats(2, 0) },
    ],
    points: [],
    overall: [
      { ...stats(4, 1, { onlineScored: 4, onlineEvalPassRate: 0.75, feedbackScored: 2, feedbackMean: 4.5 }), bucketStart: "2026-12-02T00:00:00Z", versionId: "" },
      { ...stats(0, 0), bucketStart: "2026-12-02T01:00:00Z", versionId: "" },
    ],
    totals: stats(6, 1),
  } as Series;

  it("gives one row per bucket with rates in percent", () => {
    expect(chartRows(series)).toEqual([
      { bucket: "12-02 00:00", runs: 4, ok: 3, errors: 1, errorRate: 25, p50: 100, p95: 300, cost: 0.004, tokens: 44, feedback: 4.5, feedbackCount: 2, passRate: 75, scored: 4 },
      { bucket: "12-02 01:00", runs: 0, ok: 0, errors: 0, errorRate: null, p50: null, p95: null, cost: 0, tokens: 0, feedback: null, feedbackCount: 0, passRate: null, scored: 0 },
    ]);
  });

  it("says when each version served the label", () => {
    expect(servingText(series.versions[0])).toBe("12-01 08:00 to 12-02 01:00");
    expect(servingText(series.versions[1])).toBe("since 12-02 01:00");
  });
});

const REPORT: Drift = {
  promptId: "prm_1",
  promptName: "support/triage",
  label: "production",
  drifted: true,
  alpha: 0.01,
  current: { from: "2026-12-01T20:00:00Z", to: "2026-12-02T20:00:00Z", runs: 200, scores: 0 },
  baseline: { from: "2026-11-24T20:00:00Z", to: "2026-12-01T20:00:00Z", runs: 300, scores: 0 },
  signals: [
    { name: "refusal_rate", statistic: 0.4, threshold: 0.02, drifted: true, detail: "refusals 1.0% -> 41.0%; p<0.0001", pValue: 0, baselineValue: 0.01, currentValue: 0.41, changePointAt: null },
    { name: "input_length", statistic: 0.05, threshold: 0.1, drifted: false, detail: "median length 40 -> 41 characters; D=0.050; p=0.5000", pValue: 0.5, baselineValue: 40, currentValue: 41, changePointAt: null },
  ],
  skipped: [{ name: "online_score", reason: "needs 30 online-evaluation scores in each window; baseline 0, current 0" }],
  runIds: ["run_a", "run_b"],
};

describe("drift", () => {
  afterEach(() => {
    network.handler = null;
    network.seen = [];
  });

  it("names signals readably", () => {
    expect(signalRows(REPORT).map((r) => [r.title, r.drifted])).toEqual([
      ["Refusal rate", true],
      ["Input length", false],
    ]);
  });

  it("checks drift on request and shows the verdict, the signals and what was not computed", async () => {
    network.handler = async () =>
      new Response(JSON.stringify(REPORT), { status: 200, headers: { "Content-Type": "application/json" } });
    render(
      <MantineProvider>
        <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
          <DriftPanel prompt="support/triage" label="production" />
        </QueryClientProvider>
      </MantineProvider>,
    );
    expect(network.seen).toEqual([]);
    await userEvent.click(screen.getByRole("button", { name: "Check drift" }));
    expect(await screen.findByText(/Drift detected: Refusal rate\./)).toBeInTheDocument();
    const request = network.seen[0];
    expect(request.url).toContain("/api/v1/monitoring/prompts/support");
    expect(request.url).toContain("windowMinutes=1440");
    expect(screen.getByRole("table", { name: "Drift signals" })).toHaveTextContent("refusals 1.0% -> 41.0%");
    expect(screen.getByRole("table", { name: "Signals not computed" })).toHaveTextContent("online_score");
    expect(screen.getByText(/2 runs of the current window to review/)).toBeInTheDocument();
  });
});
