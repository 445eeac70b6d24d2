import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryRouter, Route, Routes } from "react-router";
import type { Schemas } from "../api/client";
import { MeProvider, type Me } from "../auth";
import AlertsPage, { detailPairs, seenText, statusText } from "../pages/AlertsPage";
import { network } from "./network";


type Detail = Schemas["AlertDetailOut"];

function alert(overrides: Partial<Detail> = {}): Detail {
  return {
    id: "alt_1",
    ruleId: "alr_1",
    ruleName: "triage errors",
    kind: "threshold",
    severity: "critical",
    subject: "support/triage@production",
    status: "open",
    title: "error_rate of support/triage@production > 0.05 over the last 60 min: 0.3",
    summary: "error_rate is 0.3 over 20 sample(s) in the last 60 min (above the limit 0.05)",
    promptId: "prm_1",
    details: { metric: "error_rate", value: 0.3, threshold: 0.05, samples: 20, windowMinutes: 60, runIds: ["run_1"] },
    count: 3,
    firstSeenAt: "2026-12-03T09:00:00Z",
    lastSeenAt: "2026-12-03T09:02:00Z",
    acknowledgedBy: null,
    acknowledgedAt: null,
    resolvedBy: null,
    resolvedAt: null,
    resolution: null,
    annotationQueue: null,
    events: [
      { id: "ale_1", kind: "fired", actor: "system", message: "error_rate is 0.3", data: {}, createdAt: "2026-12-03T09:00:00Z" },
      { id: "ale_2", kind: "notified", actor: "system", message: "fired notification sent to webhook channel 'oncall'", data: {}, createdAt: "2026-12-03T09:00:01Z" },
    ],
    ...overrides,
  };
}

function me(permissions: string[]): Me {
  return { kind: "user", id: "usr_1", name: "qa@example.com", projectId: "prj_1", orgId: "org_1", role: "QAAnalyst", permissions };
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
              <Route path="/alerts" element={<AlertsPage />} />
              <Route path="/annotations" element={<p>annotation queue page</p>} />
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

describe("alert text", () => {
  it("says who acknowledged or resolved, and how", () => {
    expect(statusText(alert())).toBe("open");
    expect(statusText(alert({ status: "acknowledged", acknowledgedBy: "eve" }))).toBe("acknowledged by eve");
    expect(statusText(alert({ status: "resolved", resolution: "auto", resolvedBy: "system" }))).toBe("resolved automatically");
    expect(statusText(alert({ status: "resolved", resolution: "manual", resolvedBy: "eve" }))).toBe("resolved by eve");
  });

  it("counts repeated firings", () => {
    expect(seenText(alert({ count: 1 }), "en-GB")).toMatch(/^once, at /);
    expect(seenText(alert(), "en-GB")).toMatch(/^3 times, .+ – .+$/);
  });

  it("shows the measurement, not the lists", () => {
    expect(detailPairs({ metric: "error_rate", value: 0.123456, samples: 20, runIds: ["a"], signals: [{}], nothing: null })).toEqual([
      ["metric", "error_rate"],
      ["value", "0.1235"],
      ["samples", "20"],
    ]);
    expect(detailPairs({ windowMinutes: 60 })).toEqual([["window minutes", "60"]]);
  });
});

describe("alert inbox", () => {
  it("lists active alerts and opens one with its history", async () => {
    network.handler = async (request) => {
      const url = new URL(request.url);
      if (url.pathname === "/api/v1/alerts") return json({ items: [alert()], nextCursor: null });
      if (url.pathname === "/api/v1/alerts/alt_1") return json(alert());
      return json({ code: "not_found" }, 404);
    };
    page("/alerts", me(["alert:read"]));
    const table = await screen.findByRole("table", { name: "Alerts" });
    expect(new URL(network.seen[0].url).searchParams.get("status")).toBe("active");
    const row = within(table).getAllByRole("row")[1];
    expect(row).toHaveTextContent("critical");
    expect(row).toHaveTextContent("open");
    expect(row).toHaveTextContent("triage errors");
    expect(row).toHaveTextContent("3×");
    await userEvent.click(within(row).getByRole("button", { name: /error_rate of support\/triage/ }));
    expect(await screen.findByRole("heading", { name: /error_rate of support\/triage/ })).toBeInTheDocument();
    const history = screen.getByRole("table", { name: "Alert history" });
    expect(within(history).getAllByRole("row")).toHaveLength(3);
    expect(screen.getByText("0.3000")).toBeInTheDocument();
    // a QA analyst without alert:manage cannot acknowledge or resolve
    expect(screen.getByRole("button", { name: "Acknowledge" })).toBeDisabled();
    expect(screen.getByRole("button", { name: "Resolve" })).toBeDisabled();
  });

  it("acknowledges with a note and sends the affected runs to review", async () => {
    let current = alert();
    network.handler = async (request) => {
      const url = new URL(request.url);
      if (url.pathname === "/api/v1/alerts/alt_1/ack" && request.method === "POST") {
        const body = (await request.json()) as { note: string };
        current = alert({
          status: "acknowledged",
          acknowledgedBy: "qa@example.com",
          events: [...current.events, { id: "ale_3", kind: "acknowledged", actor: "qa@example.com", message: body.note, data: {}, createdAt: "2026-12-03T09:05:00Z" }],
        });
        return json(current);
      }
      if (url.pathname === "/api/v1/alerts/alt_1/annotation-queue") return json({ queue: "alert-1", created: 6, alreadyQueued: 0, items: 6 });
      if (url.pathname === "/api/v1/alerts/alt_1") return json(current);
      return json({ items: [], nextCursor: null });
    };
    page("/alerts?alert=alt_1", me(["alert:read", "alert:manage", "annotation:manage"]));
    await screen.findByRole("heading", { name: /error_rate/ });
    await userEvent.type(screen.getByRole("textbox", { name: "Note" }), "on it");
    await userEvent.click(screen.getByRole("button", { name: "Acknowledge" }));
    expect(await screen.findByText("on it")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Acknowledge" })).toBeNull();
    expect(screen.getByText(/acknowledged by qa@example.com/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Review in annotation queue" }));
    expect(await screen.findByText("annotation queue page")).toBeInTheDocument();
    expect(network.seen.some((r) => r.method === "POST" && r.url.endsWith("/api/v1/alerts/alt_1/annotation-queue"))).toBe(true);
  });
});
