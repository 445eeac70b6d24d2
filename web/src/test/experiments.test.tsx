import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryRouter, Route, Routes } from "react-router";
import type { Schemas } from "../api/client";
import { MeProvider, type Me } from "../auth";
import ExperimentsPage, { ExperimentDetail, actionsFor, interval, num, yRange } from "../pages/ExperimentsPage";
import { network } from "./network";


type Experiment = Schemas["ExperimentOut"];
type Results = Schemas["ResultsOut"];

function experiment(overrides: Partial<Experiment> = {}): Experiment {
  return {
    id: "exp_1",
    name: "friendlier greeting",
    description: "",
    promptId: "prm_1",
    promptName: "support/greeting",
    label: "production",
    status: "running",
    alpha: 0.05,
    mode: "bandit",
    bandit: { metric: "resolved", intervalSeconds: 3600, floor: 0, nextAllocationAt: null },
    arms: [
      { name: "control", version: 1, versionId: "ver_1", model: null, weight: 0.2, share: 0.2, control: true, paused: false, pausedReason: "" },
      { name: "b", version: 2, versionId: "ver_2", model: null, weight: 0.8, share: 0.8, control: false, paused: true, pausedReason: "guardrail run.latency_ms: worse" },
    ],
    metrics: [{ name: "resolved", kind: "conversion", direction: "increase", guardrail: false, source: "events" }],
    shippedArm: null,
    pendingApproval: null,
    createdBy: "usr_1",
    createdAt: "2026-12-03T09:00:00Z",
    updatedAt: "2026-12-03T09:00:00Z",
    startedAt: "2026-12-03T09:00:00Z",
    endedAt: null,
    ...overrides,
  };
}

function results(overrides: Partial<Results> = {}): Results {
  const arm = (name: string, mean: number) => ({ arm: name, n: 100, mean, ciLow: mean - 0.05, ciHigh: mean + 0.05 });
  return {
    experimentId: "exp_1",
    status: "running",
    mode: "bandit",
    alpha: 0.05,
    test: "mSPRT (normal mixture), always valid",
    computedAt: "2026-12-03T10:00:00Z",
    exposures: 200,
    arms: [
      { name: "control", version: 1, model: null, weight: 0.2, paused: false, exposures: 120 },
      { name: "b", version: 2, model: null, weight: 0.8, paused: true, exposures: 80 },
    ],
    metrics: [
      {
        name: "resolved",
        kind: "conversion",
        direction: "increase",
        guardrail: false,
        source: "events",
        arms: [arm("control", 0.1), arm("b", 0.3)],
        comparisons: [
          { arm: "b", control: "control", difference: 0.2, relative: 2, ciLow: 0.1, ciHigh: 0.3, sequenceLow: 0.05, sequenceHigh: 0.35, pValue: 0.001, significant: true, better: true },
        ],
      },
    ],
    sampleRatio: { since: null, chiSquare: 30, pValue: 0.00001, mismatch: true, threshold: 0.001, arms: ["control"] },
    guardrailViolations: [],
    bandit: {
      metric: "resolved",
      kind: "conversion",
      direction: "increase",
      bestArm: "b",
      regret: 12.5,
      regretPerUnit: 0.0625,
      allocation: [
        { seq: 0, computedAt: "2026-12-03T09:00:00Z", reason: "start", exposures: 0, regret: null, arms: [{ name: "control", share: 0.5, probabilityBest: 0, mean: null, n: 0, exposures: 0 }, { name: "b", share: 0.5, probabilityBest: 0, mean: null, n: 0, exposures: 0 }] },
        { seq: 1, computedAt: "2026-12-03T09:30:00Z", reason: "scheduled", exposures: 200, regret: 12.5, arms: [{ name: "control", share: 0.2, probabilityBest: 0.2, mean: 0.1, n: 120, exposures: 120 }, { name: "b", share: 0.8, probabilityBest: 0.8, mean: 0.3, n: 80, exposures: 80 }] },
      ],
    },
    timeline: [
      { takenAt: "2026-12-03T09:15:00Z", metric: "resolved", exposures: 100, arms: [arm("control", 0.1), arm("b", 0.25)] },
      { takenAt: "2026-12-03T09:30:00Z", metric: "resolved", exposures: 200, arms: [arm("control", 0.1), arm("b", 0.3)] },
    ],
    ...overrides,
  };
}

function me(permissions: string[]): Me {
  return { kind: "user", id: "usr_1", name: "pe@example.com", projectId: "prj_1", orgId: "org_1", role: "PromptEngineer", permissions };
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function page(url: string, who: Me) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <MantineProvider>
      <QueryClientProvider client={client}>
        <MemoryRouter initialEntries={[url]}>
          <MeProvider me={who}>
            <Routes>
              <Route path="/experiments" element={<ExperimentsPage />} />
              <Route path="/experiments/:experimentId" element={<ExperimentDetail />} />
            </Routes>
          </MeProvider>
        </MemoryRouter>
      </QueryClientProvider>
    </MantineProvider>,
  );
}

afterEach(() => {
  network.handler = null;
  network.seen = [];
});

describe("experiment helpers", () => {
  it("formats numbers and intervals", () => {
    expect(num(0.123456)).toBe("0.1235");
    expect(num(null)).toBe("–");
    expect(interval(0.1, 0.2)).toBe("[0.1, 0.2]");
    expect(interval(null, 0.2)).toBe("–");
  });

  it("allows the lifecycle actions of each status", () => {
    expect(actionsFor("draft")).toEqual({ start: true, pause: false, resume: false, stop: true, ship: false });
    expect(actionsFor("running")).toEqual({ start: false, pause: true, resume: false, stop: true, ship: true });
    expect(actionsFor("paused")).toMatchObject({ resume: true, ship: true });
    expect(actionsFor("shipped")).toEqual({ start: false, pause: false, resume: false, stop: false, ship: false });
  });

  it("spans every interval of the timeline", () => {
    const [low, high] = yRange(results().timeline);
    expect(low).toBeLessThan(0.05);
    expect(high).toBeGreaterThan(0.35);
    expect(yRange([])).toEqual([0, 1]);
  });
});

describe("experiment dashboard", () => {
  it("lists experiments and opens one with its bandit allocation, SRM flag, guardrails and intervals over time", async () => {
    network.handler = async (request) => {
      const url = new URL(request.url);
      if (url.pathname === "/api/v1/experiments") return json({ items: [experiment()], nextCursor: null });
      if (url.pathname === "/api/v1/experiments/exp_1") return json(experiment());
      if (url.pathname === "/api/v1/experiments/exp_1/results") return json(results());
      return json({ code: "not_found" }, 404);
    };
    page("/experiments", me(["experiment:read"]));
    const table = await screen.findByRole("table", { name: "Experiments" });
    const row = within(table).getAllByRole("row")[1];
    expect(row).toHaveTextContent("support/greeting@production");
    expect(row).toHaveTextContent("bandit");
    await userEvent.click(within(row).getByRole("link", { name: "friendlier greeting" }));
    expect(await screen.findByRole("heading", { name: "friendlier greeting", level: 1 })).toBeInTheDocument();
    expect(await screen.findByText("Sample ratio mismatch")).toBeInTheDocument();
    const arms = screen.getByRole("table", { name: "Arms" });
    expect(within(arms).getAllByRole("row")[2]).toHaveTextContent("paused: guardrail run.latency_ms");
    const allocation = screen.getByRole("table", { name: "Allocation over time" });
    expect(within(allocation).getAllByRole("row")).toHaveLength(3);
    expect(within(allocation).getAllByRole("row")[2]).toHaveTextContent("80.0%");
    expect(screen.getByRole("img", { name: /resolved per arm over time/ })).toBeInTheDocument();
    expect(within(screen.getByRole("table", { name: "Primary metric over time" })).getAllByRole("row")).toHaveLength(3);
    expect(within(screen.getByRole("table", { name: "Metric resolved" })).getAllByRole("row")[2]).toHaveTextContent("better");
    // a viewer (experiment:read only) sees the buttons disabled
    expect(screen.getByRole("button", { name: "Pause" })).toBeDisabled();
    expect(screen.getByRole("button", { name: "Recompute allocation" })).toBeDisabled();
    expect(screen.getByRole("button", { name: "Ship arm" })).toBeDisabled();
  });

  it("pauses and ships with experiment:manage", async () => {
    let current = experiment({ mode: "ab", bandit: null });
    network.handler = async (request) => {
      const url = new URL(request.url);
      if (url.pathname === "/api/v1/experiments/exp_1/pause" && request.method === "POST") {
        current = experiment({ mode: "ab", bandit: null, status: "paused" });
        return json(current);
      }
      if (url.pathname === "/api/v1/experiments/exp_1/ship" && request.method === "POST") {
        const body = (await request.json()) as { arm: string };
        current = experiment({ mode: "ab", bandit: null, status: "shipped", shippedArm: body.arm });
        return json(current);
      }
      if (url.pathname === "/api/v1/experiments/exp_1") return json(current);
      if (url.pathname === "/api/v1/experiments/exp_1/results") return json(results({ mode: "ab", bandit: null, timeline: [] }));
      return json({ code: "not_found" }, 404);
    };
    page("/experiments/exp_1", me(["experiment:read", "experiment:manage"]));
    await userEvent.click(await screen.findByRole("button", { name: "Pause" }));
    expect(await screen.findByRole("button", { name: "Resume" })).toBeEnabled();
    expect(screen.getByText(/No snapshot yet/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole("combobox", { name: "Arm to ship" }));
    await userEvent.click(await screen.findByRole("option", { name: "control", hidden: true }));
    await userEvent.click(screen.getByRole("button", { name: "Ship arm" }));
    expect(await screen.findByText(/shipped control/)).toBeInTheDocument();
    expect(network.seen.some((r) => r.method === "POST" && r.url.endsWith("/api/v1/experiments/exp_1/ship"))).toBe(true);
  });
});
