import { MantineProvider } from "@mantine/core";
import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { modelTarget, trajectoryPoints, winnerOf, type Candidate, type Optimization } from "../pages/optimize/model";
import { optimizeUrl } from "../paths";
import { TrajectoryChart } from "../pages/optimize/TrajectoryChart";

function candidate(id: string, createdAt: string, calls: number, trainScore: number | null, strategy = id): Candidate {
  return { id, round: 0, strategy, template: "t", parentCandidateId: null, trainScore, valScore: null, calls, status: trainScore === null ? "screened" : "scored", tokens: 1, createdAt };
}

function optimization(overrides: Partial<Optimization>): Optimization {
  return {
    id: "opt_1",
    status: "completed",
    promptId: "prm_1",
    baseVersionId: "ver_base",
    datasetVersionId: "dsv_1",
    spec: { promptName: "sentiment/zero-shot", version: 1 },
    budget: 10,
    callsUsed: 10,
    round: 1,
    phase: "done",
    bestCandidateId: "cnd_2",
    bestTrainScore: 1,
    winnerVersionId: null,
    report: {},
    cancelRequested: false,
    attempts: 1,
    error: null,
    createdBy: null,
    createdAt: "2026-01-01T00:00:00Z",
    startedAt: null,
    finishedAt: null,
    ...overrides,
  };
}

describe("trajectoryPoints", () => {
  it("orders candidates by creation, adds up calls and keeps the best training score so far", () => {
    const points = trajectoryPoints([
      candidate("c3", "2026-01-01T00:00:03Z", 2, 0.25),
      candidate("c1", "2026-01-01T00:00:01Z", 4, 0.5),
      candidate("c2", "2026-01-01T00:00:02Z", 4, 0.75),
    ]);
    expect(points.map((p) => [p.calls, p.best, p.score])).toEqual([
      [4, 0.5, 0.5],
      [8, 0.75, 0.75],
      [10, 0.75, 0.25],
    ]);
  });

  it("counts the calls of an unscored candidate but plots no point before the first score", () => {
    const points = trajectoryPoints([candidate("a", "2026-01-01T00:00:01Z", 3, null), candidate("b", "2026-01-01T00:00:02Z", 2, 0.4), candidate("c", "2026-01-01T00:00:03Z", 1, null)]);
    expect(points.map((p) => [p.candidateId, p.calls, p.best, p.score])).toEqual([
      ["b", 5, 0.4, 0.4],
      ["c", 6, 0.4, null],
    ]);
    expect(trajectoryPoints([])).toEqual([]);
  });
});

describe("winnerOf", () => {
  it("is the saved winner version when the search beat the start", () => {
    const o = optimization({ winnerVersionId: "ver_win", report: { winner: { version: 2, candidateId: "cnd_2" }, keptBaseline: false } });
    expect(winnerOf(o)).toEqual({ versionId: "ver_win", version: 2, candidateId: "cnd_2", keptBaseline: false });
  });

  it("is the starting version when nothing beat it, and nothing while it runs or after a failure", () => {
    expect(winnerOf(optimization({ report: { keptBaseline: true } }))).toEqual({ versionId: "ver_base", version: 1, candidateId: null, keptBaseline: true });
    expect(winnerOf(optimization({ status: "running" }))).toBeNull();
    expect(winnerOf(optimization({ status: "failed" }))).toBeNull();
  });
});

describe("optimizeUrl", () => {
  it("is the deep link to a tab with the prompt filled in", () => {
    expect(optimizeUrl("refine", "sentiment/few-shot")).toBe("/optimize?tab=refine&prompt=sentiment%2Ffew-shot");
    expect(optimizeUrl("optimize")).toBe("/optimize?tab=optimize");
  });
});

describe("modelTarget", () => {
  it("reads provider/model, a bare model as local, and an optional answer cap", () => {
    expect(modelTarget("")).toBeUndefined();
    expect(modelTarget("  ", "")).toBeUndefined();
    expect(modelTarget("", 3)).toEqual({ params: { max_tokens: 3 } });
    expect(modelTarget("openai/gpt-4o-mini")).toEqual({ provider: "openai", model: "gpt-4o-mini" });
    expect(modelTarget("gemma-3-270m", "8")).toEqual({ provider: "local", model: "gemma-3-270m", params: { max_tokens: 8 } });
    expect(modelTarget("local/gemma-3-270m", 0)).toEqual({ provider: "local", model: "gemma-3-270m" });
  });
});

describe("TrajectoryChart", () => {
  it("says in words where the search stands and offers the points as a table", () => {
    const points = trajectoryPoints([candidate("c1", "2026-01-01T00:00:01Z", 4, 0.5, "baseline"), candidate("c2", "2026-01-01T00:00:02Z", 4, 1, "few-shot:2")]);
    render(
      <MantineProvider>
        <TrajectoryChart points={points} />
      </MantineProvider>,
    );
    expect(screen.getByText("Best training score 1.000 after 8 model calls (2 scored points).")).toBeInTheDocument();
    const rows = within(screen.getByRole("table", { name: "Trajectory" })).getAllByRole("row");
    expect(rows.map((r) => r.textContent)).toEqual(["Model callsCandidateIts scoreBest so far", "4baseline0.5000.500", "8few-shot:21.0001.000"]);
  });

  it("has no chart and no table before the first score", () => {
    render(
      <MantineProvider>
        <TrajectoryChart points={[]} />
      </MantineProvider>,
    );
    expect(screen.getByText("No candidate has a score yet.")).toBeInTheDocument();
    expect(screen.queryByRole("table")).toBeNull();
    expect(screen.queryByRole("img")).toBeNull();
  });
});
