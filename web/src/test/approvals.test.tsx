import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryRouter, Route, Routes } from "react-router";
import type { Schemas } from "../api/client";
import { awaitsDecisionOf, isApprovalRequest, moveText, type ApprovalRequest } from "../approvals";
import { MeProvider, type Me } from "../auth";
import { ApprovalNotice } from "../components/ApprovalNotice";
import ApprovalsPage, { ApprovalDetail, outcomeText, ruleText } from "../pages/ApprovalsPage";
import { network } from "./network";


afterEach(() => {
  network.handler = null;
  network.seen = [];
});

function request(overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return {
    id: "apr_1",
    promptId: "prm_1",
    promptName: "support/route",
    label: "production",
    action: "set",
    version: 2,
    versionId: "ver_2",
    baseVersion: 1,
    baseVersionId: "ver_1",
    reason: "clearer routing",
    status: "open",
    required: 2,
    approvals: 0,
    roles: ["PromptEngineer", "PromptOpsAdmin"],
    requestedBy: "usr_author",
    requestedByName: "Ann Author",
    authorId: "usr_author",
    supersededBy: null,
    resolvedBy: null,
    resolvedByName: null,
    resolutionNote: "",
    createdAt: "2026-12-03T09:00:00Z",
    resolvedAt: null,
    decisions: [],
    move: null,
    ...overrides,
  };
}

const COMPARISON = {
  a: { evalRunId: "evr_1", versionId: "ver_1", targetIndex: 0, label: "support/route@1" },
  b: { evalRunId: "evr_1", versionId: "ver_2", targetIndex: 0, label: "support/route@2" },
  cases: 20,
  aPassRate: 0.6,
  bPassRate: 0.9,
  aMeanScore: 0.6,
  bMeanScore: 0.9,
  mcnemar: { aOnly: 0, bOnly: 6, both: 12, neither: 2, pValue: 0.031, method: "exact" },
  scoreDiff: { points: 30, low: 10, high: 50, confidence: 0.95, resamples: 2000 },
  significant: true,
  winner: "B",
  verdict: "B is better",
  casesNeeded: null,
  flipped: [],
};

function group(versionId: string, version: number, passRate: number) {
  return { promptName: "support/route", versionId, version, label: `support/route@${version}`, targetIndex: 0, target: "local/gemma-3-270m", cases: 20, completed: 20, passed: 0, failed: 0, errors: 0, passRate, meanScore: passRate, costUsd: 0 };
}

function review(overrides: Partial<Schemas["ApprovalReviewOut"]> = {}, req: Partial<ApprovalRequest> = {}): Schemas["ApprovalReviewOut"] {
  const groups = [group("ver_1", 1, 0.6), group("ver_2", 2, 0.9)];
  return {
    request: request(req),
    currentVersion: 1,
    diff: {
      from: "support/route@1",
      to: "support/route@2",
      fromVersionId: "ver_1",
      toVersionId: "ver_2",
      identical: false,
      kindChanged: false,
      template: "--- a\n+++ b\n@@ -1 +1 @@\n-Route this ticket: {{ ticket }}\n+Route this ticket to a team: {{ ticket }}\n",
      variables: [],
      modelConfig: [],
      responseSchema: [],
      metadata: [],
    },
    lint: { findings: [{ rule: "PL004", name: "vague-instruction", severity: "warning", message: "“a team” is vague", hint: "name the teams" }], blocking: 0 },
    evaluation: {
      candidate: { versionId: "ver_2", evalRunId: "evr_1", finishedAt: "2026-12-03T08:00:00Z", groups },
      current: { versionId: "ver_1", evalRunId: "evr_1", finishedAt: "2026-12-03T08:00:00Z", groups },
      comparison: COMPARISON,
      note: "Paired on the cases both versions ran",
    },
    canDecide: true,
    whyNot: null,
    ...overrides,
  };
}

function me(role: Me["role"], permissions: string[], id = "usr_reviewer"): Me {
  return { kind: "user", id, name: id, projectId: "prj_1", orgId: "org_1", role, permissions };
}

const REVIEWER = me("PromptEngineer", ["approval:read", "approval:review", "label:write"]);
const ADMIN = me("PromptOpsAdmin", ["approval:read", "approval:review", "approval:override", "label:write"], "usr_admin");

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function problem(status: number, code: string, detail: string): Response {
  return new Response(JSON.stringify({ type: "about:blank", title: "x", status, code, detail, requestId: "req_1" }), {
    status,
    headers: { "Content-Type": "application/problem+json" },
  });
}

function show(url: string, who: Me) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <MantineProvider>
      <QueryClientProvider client={client}>
        <MemoryRouter initialEntries={[url]}>
          <MeProvider me={who}>
            <Routes>
              <Route path="/approvals" element={<ApprovalsPage />} />
              <Route path="/approvals/:requestId" element={<ApprovalDetail />} />
            </Routes>
          </MeProvider>
        </MemoryRouter>
      </QueryClientProvider>
    </MantineProvider>,
  );
}

describe("approval helpers", () => {
  it("counts a request for a reviewer whose role counts, who neither asked nor wrote it and has not decided", () => {
    const r = request();
    expect(awaitsDecisionOf(r, REVIEWER)).toBe(true);
    expect(awaitsDecisionOf(r, me("PromptEngineer", ["approval:review"], "usr_author"))).toBe(false);
    expect(awaitsDecisionOf(request({ authorId: "usr_reviewer" }), REVIEWER)).toBe(false);
    expect(awaitsDecisionOf(r, me("QAAnalyst", ["approval:review"]))).toBe(false);
    expect(awaitsDecisionOf(r, me("PromptEngineer", ["approval:read"]))).toBe(false);
    expect(awaitsDecisionOf(request({ status: "applied" }), REVIEWER)).toBe(false);
    const decided = request({ decisions: [{ id: "apd_1", decision: "approve", reviewerId: "usr_reviewer", reviewerName: "R", reviewerRole: "PromptEngineer", comment: "", createdAt: "2026-12-03T09:01:00Z" }] });
    expect(awaitsDecisionOf(decided, REVIEWER)).toBe(false);
  });

  it("tells a 202 approval request from a 200 label move", () => {
    expect(isApprovalRequest(request())).toBe(true);
    expect(isApprovalRequest({ promptId: "prm_1", name: "a", label: "production", version: 2, versionId: "ver_2", deployed: true })).toBe(false);
    expect(isApprovalRequest(null)).toBe(false);
  });

  it("says the move, the rule and the outcome in words", () => {
    expect(moveText(request())).toBe("v1 → v2");
    expect(moveText(request({ baseVersion: null }))).toBe("new → v2");
    expect(ruleText(request({ approvals: 1 }))).toBe("1 of 2 approvals from PromptEngineer, PromptOpsAdmin");
    expect(ruleText(request({ required: 1, roles: ["QAAnalyst"] }))).toBe("0 of 1 approval from QAAnalyst");
    const move = { promptId: "prm_1", name: "support/route", label: "production", version: 2, versionId: "ver_2", previousVersion: 1, previousVersionId: "ver_1", deployed: true };
    expect(outcomeText("approve", request({ status: "applied", approvals: 2, move }))).toBe("Approved: the rule is met. production now points at v2.");
    expect(outcomeText("approve", request({ approvals: 1 }))).toBe("Approved (1 of 2 approvals from PromptEngineer, PromptOpsAdmin); the label moves when the rule is met.");
    expect(outcomeText("override", request({ status: "overridden", move }))).toBe("Overridden. production now points at v2.");
  });
});

describe("ApprovalNotice", () => {
  it("says nothing moved yet and links to the request", () => {
    render(
      <MantineProvider>
        <MemoryRouter>
          <ApprovalNotice request={request()} />
        </MemoryRouter>
      </MantineProvider>,
    );
    const notice = screen.getByTestId("approval-notice");
    expect(notice).toHaveTextContent("production on support/route needs 2 approvals (from PromptEngineer, PromptOpsAdmin) before it moves (v1 → v2). Nothing moved yet.");
    expect(within(notice).getByRole("link", { name: "Open approval request apr_1" })).toHaveAttribute("href", "/approvals/apr_1");
  });
});

describe("the review screen", () => {
  it("shows the move, the rule, the diff, lint and the evaluation comparison; a rejection needs a comment; approving moves the label", async () => {
    let current = review();
    network.handler = async (r) => {
      const path = new URL(r.url).pathname;
      if (r.method === "GET" && path === "/api/v1/approvals/apr_1") return json(current);
      if (r.method === "POST" && path === "/api/v1/approvals/apr_1/approve") {
        const body = (await r.json()) as { comment: string };
        const move = { promptId: "prm_1", name: "support/route", label: "production", version: 2, versionId: "ver_2", previousVersion: 1, previousVersionId: "ver_1", deployed: true };
        const decided = request({
          status: "applied",
          approvals: 2,
          required: 2,
          move,
          decisions: [{ id: "apd_1", decision: "approve", reviewerId: "usr_reviewer", reviewerName: "Rita Reviewer", reviewerRole: "PromptEngineer", comment: body.comment, createdAt: "2026-12-03T09:05:00Z" }],
        });
        current = review({ canDecide: false, whyNot: "The request is applied", currentVersion: 2 }, decided);
        return json(decided);
      }
      return problem(404, "not_found", `no route ${r.method} ${path}`);
    };
    show("/approvals/apr_1", REVIEWER);
    await screen.findByRole("heading", { name: "Approval request apr_1" });
    expect(screen.getByTestId("requested-move")).toHaveTextContent("Move production of support/route: v1 → v2");
    expect(screen.getByTestId("rule")).toHaveTextContent("0 of 2 approvals from PromptEngineer, PromptOpsAdmin");
    expect(screen.getByRole("table", { name: "The request" })).toHaveTextContent("production points at v1");
    expect(screen.getByLabelText("Template diff")).toHaveTextContent("+Route this ticket to a team");
    expect(screen.getByRole("table", { name: "Lint findings" })).toHaveTextContent("PL004 vague-instruction");
    const evals = screen.getByRole("table", { name: "Latest evaluation of both versions" });
    expect(evals).toHaveTextContent("Current (v1)");
    expect(evals).toHaveTextContent("60%");
    expect(evals).toHaveTextContent("Requested (v2)");
    expect(evals).toHaveTextContent("90%");
    expect(screen.getByTestId("approval-comparison")).toHaveTextContent("support/route@2 is better than support/route@1: +30 points, 95% interval [+10, +50]");
    expect(screen.queryByRole("button", { name: "Override…" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Withdraw request…" })).toBeNull();

    // a rejection without a comment is stopped before it is sent
    await userEvent.click(screen.getByRole("button", { name: "Reject" }));
    expect(screen.getByText("Say why you reject it: a rejection needs a comment")).toBeInTheDocument();
    expect(network.seen.filter((r) => r.method === "POST")).toHaveLength(0);

    await userEvent.type(screen.getByRole("textbox", { name: /Comment/ }), "reads well");
    await userEvent.click(screen.getByRole("button", { name: "Approve" }));
    expect(await screen.findByTestId("approval-outcome")).toHaveTextContent("Approved: the rule is met. production now points at v2.");
    const post = network.seen.find((r) => r.method === "POST")!;
    expect(new URL(post.url).pathname).toBe("/api/v1/approvals/apr_1/approve");
    await waitFor(() => expect(screen.getByRole("table", { name: "Decisions" })).toHaveTextContent("Rita Reviewer"));
    expect(screen.getByRole("table", { name: "Decisions" })).toHaveTextContent("reads well");
    expect(screen.getByTestId("outcome")).toHaveTextContent("applied");
    expect(screen.queryByRole("button", { name: "Approve" })).toBeNull();
  });

  it("explains why the requester cannot decide, and lets them withdraw the request", async () => {
    network.handler = async (r) => {
      const path = new URL(r.url).pathname;
      if (r.method === "GET") return json(review({ canDecide: false, whyNot: "You requested this move (four-eyes rule)" }));
      if (path === "/api/v1/approvals/apr_1/cancel") return json(request({ status: "cancelled" }));
      return problem(404, "not_found", path);
    };
    show("/approvals/apr_1", me("PromptEngineer", ["approval:read", "approval:review", "label:write"], "usr_author"));
    expect(await screen.findByTestId("why-not")).toHaveTextContent("You cannot approve or reject this request: You requested this move (four-eyes rule).");
    expect(screen.queryByRole("button", { name: "Approve" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Reject" })).toBeNull();
    await userEvent.click(screen.getByRole("button", { name: "Withdraw request…" }));
    await userEvent.click(await screen.findByRole("button", { name: "Withdraw" }));
    expect(await screen.findByTestId("approval-outcome")).toHaveTextContent("The request is withdrawn.");
  });

  it("makes an admin's override confirm with a note, and shows the server's refusal", async () => {
    let bodies: unknown[] = [];
    network.handler = async (r) => {
      const path = new URL(r.url).pathname;
      if (r.method === "GET") return json(review());
      if (path === "/api/v1/approvals/apr_1/override") {
        bodies = [...bodies, await r.json()];
        return problem(409, "approval_not_open", "The approval request apr_1 is superseded");
      }
      return problem(404, "not_found", path);
    };
    show("/approvals/apr_1", ADMIN);
    await userEvent.click(await screen.findByRole("button", { name: "Override…" }));
    const dialog = await screen.findByRole("dialog");
    await userEvent.click(within(dialog).getByRole("button", { name: "Override and move" }));
    expect(within(dialog).getByText("An override needs a note saying why (it is audited)")).toBeInTheDocument();
    expect(bodies).toEqual([]);
    await userEvent.type(within(dialog).getByRole("textbox", { name: /Note/ }), "incident 42");
    await userEvent.click(within(dialog).getByRole("button", { name: "Override and move" }));
    expect(await within(dialog).findByRole("alert")).toHaveTextContent("The approval request apr_1 is superseded");
    expect(bodies).toEqual([{ note: "incident 42" }]);
  });

  it("lists requests with the filters from the address and marks those waiting for you", async () => {
    network.handler = async (r) => {
      const url = new URL(r.url);
      expect(url.pathname).toBe("/api/v1/approvals");
      expect(url.searchParams.get("status")).toBe("open");
      expect(url.searchParams.get("label")).toBe("production");
      return json({ items: [request(), request({ id: "apr_2", requestedBy: "usr_reviewer", promptName: "support/other" })], nextCursor: null });
    };
    show("/approvals?status=open&label=production", REVIEWER);
    const table = await screen.findByRole("table", { name: "Approval requests" });
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows[0]).toHaveTextContent("apr_1waiting for you");
    expect(rows[0]).toHaveTextContent("v1 → v2");
    expect(rows[0]).toHaveTextContent("0 / 2");
    expect(within(rows[0]).getByRole("link", { name: "apr_1" })).toHaveAttribute("href", "/approvals/apr_1");
    expect(rows[1]).not.toHaveTextContent("waiting for you");
  });
});
