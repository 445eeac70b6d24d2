// Approvals (/approvals, /approvals/<id>): label moves on gated labels waiting for reviewers. The list is
// filtered by status, prompt and label (kept in the address); a request's page is the review screen: the move
// asked for and the rule, the decisions so far, the diff against the label's current version, the lint findings
// and the latest evaluation of both versions with their paired comparison; approve, reject (with a comment),
// override (admins, with a note) or withdraw it.
import { Anchor, Badge, Button, Group, Loader, Modal, Paper, Select, Stack, Table, Text, TextInput, Textarea, Title } from "@mantine/core";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router";
import { api, unwrap, type Query, type Schemas } from "../api/client";
import { APPROVAL_STATUSES, approvalUrl, awaitsDecisionOf, moveText, type ApprovalRequest } from "../approvals";
import { useCan, useMe } from "../auth";
import { CHANGE_COLOR, OK_COLOR, SEVERITY_COLOR } from "../colors";
import { DiffView } from "../components/DiffView";
import { ErrorNotice } from "../components/ErrorNotice";
import { Pager, useCursorPages } from "../components/Paging";
import { TableHead } from "../components/TableHead";
import { promptUrl } from "../paths";
import { useUrlFilters } from "../urlFilters";
import { methodText, percent, verdictHeadline, type Comparison, type SummaryGroup } from "./evals/shared";

type Review = Schemas["ApprovalReviewOut"];
type EvalSide = Schemas["ApprovalEvalSideOut"];

const FILTERS = ["status", "prompt", "label"] as const;

const STATUS_COLOR: Record<string, string> = {
  open: "blue.9",
  applied: OK_COLOR,
  rejected: CHANGE_COLOR.removed,
  overridden: CHANGE_COLOR.changed,
  superseded: "gray.7",
  cancelled: "gray.7",
};

export function ApprovalStatusBadge({ status }: { status: string }) {
  return (
    <Badge color={STATUS_COLOR[status] ?? "gray.7"} miw="max-content">
      {status}
    </Badge>
  );
}

/** "1 of 2 approvals from PromptEngineer, PromptOpsAdmin" */
export function ruleText(r: Pick<ApprovalRequest, "approvals" | "required" | "roles">): string {
  return `${r.approvals} of ${r.required} ${r.required === 1 ? "approval" : "approvals"} from ${r.roles.join(", ")}`;
}

/** Who an id is: the audit names users by id (no personal data in the chain); the member list has their names. */
function usePeople(): (id: string | null | undefined, fallback?: string | null) => string {
  const canRead = useCan("member:read");
  const members = useQuery({ queryKey: ["members"], queryFn: () => unwrap(api.GET("/api/v1/members")), staleTime: 60_000, enabled: canRead });
  const names = new Map((members.data ?? []).map((m) => [m.userId, m.name || m.email]));
  return (id, fallback) => (id ? (names.get(id) ?? (fallback || id)) : (fallback ?? "—"));
}

export default function ApprovalsPage() {
  const me = useMe();
  const who = usePeople();
  const pages = useCursorPages();
  const { filters, setFilter } = useUrlFilters(FILTERS, pages.reset);
  const query = { ...filters, cursor: pages.cursor, limit: 50 } as Query<"/api/v1/approvals">;
  const requests = useQuery({
    queryKey: ["approvals", query],
    queryFn: () => unwrap(api.GET("/api/v1/approvals", { params: { query } })),
    placeholderData: keepPreviousData,
  });
  const items = requests.data?.items ?? [];
  return (
    <Stack>
      <Title order={1} size="h2">
        Approvals
      </Title>
      <Text size="sm">
        Moves of labels that the project gates with approvals (Settings → Labels and lint). A move happens once enough reviewers approve it; whoever asked
        for it or wrote the version cannot approve it.
      </Text>
      <Group align="end">
        <Select label="Status" clearable data={[...APPROVAL_STATUSES]} value={filters.status ?? null} onChange={(v) => setFilter("status", v)} w={160} />
        <TextInput label="Prompt" placeholder="name or id" defaultValue={filters.prompt} onBlur={(e) => setFilter("prompt", e.currentTarget.value.trim())} w={240} />
        <TextInput label="Label" placeholder="production" defaultValue={filters.label} onBlur={(e) => setFilter("label", e.currentTarget.value.trim())} w={180} />
      </Group>
      <ErrorNotice error={requests.error} />
      {requests.data && items.length === 0 && (
        <Text>{Object.keys(filters).length ? "No approval request matches these filters." : "No approval requests yet."}</Text>
      )}
      {items.length > 0 && (
        <Table aria-label="Approval requests" striped>
          <TableHead columns={["Request", "Prompt", "Label", "Move", "Status", "Approvals", "Requested by", "Requested"]} />
          <Table.Tbody>
            {items.map((r) => (
              <Table.Tr key={r.id}>
                <Table.Td>
                  <Anchor component={Link} to={approvalUrl(r.id)}>
                    {r.id}
                  </Anchor>
                  {awaitsDecisionOf(r, me) && (
                    <Badge ml="xs" size="sm" color="blue.9">
                      waiting for you
                    </Badge>
                  )}
                </Table.Td>
                <Table.Td>
                  <Anchor component={Link} to={promptUrl(r.promptName, "labels")}>
                    {r.promptName}
                  </Anchor>
                </Table.Td>
                <Table.Td>{r.label}</Table.Td>
                <Table.Td>
                  {moveText(r)}
                  {r.action === "rollback" ? " (rollback)" : ""}
                </Table.Td>
                <Table.Td>
                  <ApprovalStatusBadge status={r.status} />
                </Table.Td>
                <Table.Td>
                  {r.approvals} / {r.required}
                </Table.Td>
                <Table.Td>{who(r.requestedBy, r.requestedByName)}</Table.Td>
                <Table.Td>{new Date(r.createdAt).toLocaleString()}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Pager pages={pages} nextCursor={requests.data?.nextCursor} labels={["Newer", "Older"]} />
    </Stack>
  );
}

function Fact({ term, children }: { term: string; children: React.ReactNode }) {
  return (
    <Table.Tr>
      <Table.Th scope="row" w={180}>
        {term}
      </Table.Th>
      <Table.Td>{children}</Table.Td>
    </Table.Tr>
  );
}

function Summary({ review }: { review: Review }) {
  const r = review.request;
  const who = usePeople();
  return (
    <Paper withBorder p="md">
      <Text fw={700} size="lg" data-testid="requested-move">
        {r.action === "rollback" ? "Roll back" : "Move"} {r.label} of {r.promptName}: {moveText(r)}
      </Text>
      <Table aria-label="The request" mt="xs">
        <Table.Tbody>
          <Fact term="Prompt">
            <Anchor component={Link} to={promptUrl(r.promptName, "labels")}>
              {r.promptName}
            </Anchor>
          </Fact>
          <Fact term="Label now">{review.currentVersion == null ? `${r.label} has no version yet` : `${r.label} points at v${review.currentVersion}`}</Fact>
          <Fact term="Requested by">
            {who(r.requestedBy, r.requestedByName)} · {new Date(r.createdAt).toLocaleString()}
          </Fact>
          <Fact term="Reason">{r.reason || "—"}</Fact>
          <Fact term="Rule">
            <span data-testid="rule">{ruleText(r)}</span>
          </Fact>
          {r.status !== "open" && (
            <Fact term="Outcome">
              <span data-testid="outcome">
                {r.status}
                {r.resolvedBy ? ` by ${who(r.resolvedBy, r.resolvedByName)}` : ""}
                {r.resolvedAt ? ` · ${new Date(r.resolvedAt).toLocaleString()}` : ""}
                {r.resolutionNote ? ` · “${r.resolutionNote}”` : ""}
              </span>
              {r.supersededBy && (
                <>
                  {" "}
                  ·{" "}
                  <Anchor component={Link} to={approvalUrl(r.supersededBy)}>
                    superseded by {r.supersededBy}
                  </Anchor>
                </>
              )}
            </Fact>
          )}
        </Table.Tbody>
      </Table>
    </Paper>
  );
}

function Decisions({ decisions }: { decisions: ApprovalRequest["decisions"] }) {
  const who = usePeople();
  if (decisions.length === 0) return <Text size="sm">No decision yet.</Text>;
  return (
    <Table aria-label="Decisions" striped>
      <TableHead columns={["Reviewer", "Role", "Decision", "Comment", "When"]} />
      <Table.Tbody>
        {decisions.map((d) => (
          <Table.Tr key={d.id}>
            <Table.Td>{who(d.reviewerId, d.reviewerName)}</Table.Td>
            <Table.Td>{d.reviewerRole}</Table.Td>
            <Table.Td>
              <Badge color={d.decision === "approve" ? OK_COLOR : CHANGE_COLOR.removed}>{d.decision === "approve" ? "approved" : "rejected"}</Badge>
            </Table.Td>
            <Table.Td>{d.comment || "—"}</Table.Td>
            <Table.Td>{new Date(d.createdAt).toLocaleString()}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

type Action = "approve" | "reject" | "override" | "cancel";

function callAction(id: string, action: Action, text: string) {
  const path = { request_id: id };
  switch (action) {
    case "approve":
      return unwrap(api.POST("/api/v1/approvals/{request_id}/approve", { params: { path }, body: { comment: text } }));
    case "reject":
      return unwrap(api.POST("/api/v1/approvals/{request_id}/reject", { params: { path }, body: { comment: text } }));
    case "override":
      return unwrap(api.POST("/api/v1/approvals/{request_id}/override", { params: { path }, body: { note: text } }));
    case "cancel":
      return unwrap(api.POST("/api/v1/approvals/{request_id}/cancel", { params: { path }, body: { note: text } }));
  }
}

/** What the last action did, in words. */
export function outcomeText(action: Action, r: ApprovalRequest): string {
  const moved = r.move ? ` ${r.move.label} now points at v${r.move.version}.` : "";
  if (action === "approve") return r.status === "applied" ? `Approved: the rule is met.${moved}` : `Approved (${ruleText(r)}); the label moves when the rule is met.`;
  if (action === "reject") return "Rejected: the label does not move.";
  if (action === "override") return `Overridden.${moved}`;
  return "The request is withdrawn.";
}

function DecisionPanel({ review }: { review: Review }) {
  const me = useMe();
  const canOverride = useCan("approval:override");
  const client = useQueryClient();
  const r = review.request;
  const [comment, setComment] = useState("");
  const [commentError, setCommentError] = useState<string | null>(null);
  const [dialog, setDialog] = useState<"override" | "cancel" | null>(null);
  const [note, setNote] = useState("");
  const [noteError, setNoteError] = useState<string | null>(null);
  const [outcome, setOutcome] = useState<string | null>(null);
  const act = useMutation({
    mutationFn: ({ action, text }: { action: Action; text: string }) => callAction(r.id, action, text),
    onSuccess: async (updated, { action }) => {
      setOutcome(outcomeText(action, updated));
      setComment("");
      setNote("");
      setDialog(null);
      await Promise.all([
        client.invalidateQueries({ queryKey: ["approval", r.id] }),
        client.invalidateQueries({ queryKey: ["approvals"] }),
        client.invalidateQueries({ queryKey: ["prompt", r.promptName] }),
      ]);
    },
  });
  const open = r.status === "open";
  const mayCancel = open && (me.id === r.requestedBy || canOverride);
  function decide(action: "approve" | "reject") {
    if (action === "reject" && !comment.trim()) {
      setCommentError("Say why you reject it: a rejection needs a comment");
      return;
    }
    setCommentError(null);
    act.mutate({ action, text: comment.trim() });
  }
  function confirmDialog() {
    if (dialog === "override" && !note.trim()) {
      setNoteError("An override needs a note saying why (it is audited)");
      return;
    }
    act.mutate({ action: dialog!, text: note.trim() });
  }
  function openDialog(kind: "override" | "cancel") {
    act.reset();
    setNote("");
    setNoteError(null);
    setDialog(kind);
  }
  return (
    <Stack>
      {outcome && (
        <Text role="status" data-testid="approval-outcome" fw={600}>
          {outcome}
        </Text>
      )}
      {open && review.canDecide && (
        <Stack gap="xs">
          <Textarea
            label="Comment"
            description="Optional to approve, required to reject"
            maxLength={2000}
            value={comment}
            error={commentError}
            onChange={(e) => {
              setComment(e.currentTarget.value);
              setCommentError(null);
            }}
            rows={3}
          />
          <Group>
            <Button color={OK_COLOR} onClick={() => decide("approve")} loading={act.isPending && act.variables?.action === "approve"}>
              Approve
            </Button>
            <Button color="red.9" onClick={() => decide("reject")} loading={act.isPending && act.variables?.action === "reject"}>
              Reject
            </Button>
          </Group>
        </Stack>
      )}
      {open && !review.canDecide && review.whyNot && (
        <Text size="sm" data-testid="why-not">
          You cannot approve or reject this request: {review.whyNot}.
        </Text>
      )}
      {(canOverride && open) || mayCancel ? (
        <Group>
          {canOverride && open && (
            <Button variant="default" onClick={() => openDialog("override")}>
              Override…
            </Button>
          )}
          {mayCancel && (
            <Button variant="default" onClick={() => openDialog("cancel")}>
              Withdraw request…
            </Button>
          )}
        </Group>
      ) : null}
      {!dialog && <ErrorNotice error={act.error} title="Not done" />}
      <Modal
        opened={dialog !== null}
        onClose={() => setDialog(null)}
        title={dialog === "override" ? `Override: move ${r.label} to v${r.version} without the approvals` : "Withdraw this approval request"}
      >
        <Stack>
          <Text size="sm">
            {dialog === "override"
              ? `${r.label} of ${r.promptName} moves to v${r.version} now (${ruleText(r)} so far). The override and your note are recorded in the audit log (ApprovalOverridden).`
              : `The request is closed and ${r.label} stays where it is. Reviewers can no longer decide on it.`}
          </Text>
          <Textarea
            label={dialog === "override" ? "Note (required)" : "Note"}
            required={dialog === "override"}
            maxLength={2000}
            value={note}
            error={noteError}
            onChange={(e) => {
              setNote(e.currentTarget.value);
              setNoteError(null);
            }}
            rows={3}
            data-autofocus
          />
          <ErrorNotice error={act.error} title="Not done" />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setDialog(null)}>
              Back
            </Button>
            <Button color={dialog === "override" ? "red.9" : undefined} onClick={confirmDialog} loading={act.isPending}>
              {dialog === "override" ? "Override and move" : "Withdraw"}
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Stack>
  );
}

function Lint({ lint }: { lint: Review["lint"] }) {
  if (lint.findings.length === 0) return <Text size="sm">No findings on the requested version.</Text>;
  return (
    <Stack gap="xs">
      <Text size="sm">
        {lint.findings.length} {lint.findings.length === 1 ? "finding" : "findings"}, {lint.blocking} at or above the project's blocking severity.
      </Text>
      <Table aria-label="Lint findings">
        <TableHead columns={["Severity", "Rule", "Message", "Hint"]} />
        <Table.Tbody>
          {lint.findings.map((f, index) => (
            <Table.Tr key={index}>
              <Table.Td>
                <Badge color={SEVERITY_COLOR[f.severity] ?? "gray.7"}>{f.severity}</Badge>
              </Table.Td>
              <Table.Td>
                {f.rule} {f.name}
              </Table.Td>
              <Table.Td>{f.message}</Table.Td>
              <Table.Td>{f.hint}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}

function sideGroups(side: EvalSide | null | undefined): SummaryGroup[] {
  return ((side?.groups ?? []) as unknown as SummaryGroup[]).filter((g) => g.versionId === side?.versionId);
}

function Evaluation({ review }: { review: Review }) {
  const { candidate, current, comparison, note } = review.evaluation;
  const r = review.request;
  const rows: { name: string; side: EvalSide | null | undefined }[] = [
    { name: review.currentVersion == null ? "Current version" : `Current (v${review.currentVersion})`, side: current },
    { name: `Requested (v${r.version})`, side: candidate },
  ];
  const c = comparison as Comparison | null | undefined;
  return (
    <Stack gap="xs">
      <Table aria-label="Latest evaluation of both versions" striped>
        <TableHead columns={["Version", "Evaluation", "Model", "Pass rate", "Mean score", "Finished"]} />
        <Table.Tbody>
          {rows.flatMap(({ name, side }) => {
            const groups = sideGroups(side);
            if (!side || groups.length === 0)
              return [
                <Table.Tr key={name}>
                  <Table.Td>{name}</Table.Td>
                  <Table.Td colSpan={5}>No completed evaluation</Table.Td>
                </Table.Tr>,
              ];
            return groups.map((g) => (
              <Table.Tr key={`${name}-${g.targetIndex}`}>
                <Table.Td>{name}</Table.Td>
                <Table.Td>
                  <Anchor component={Link} to={`/evals/${side.evalRunId}`}>
                    {side.evalRunId}
                  </Anchor>
                </Table.Td>
                <Table.Td>{g.target}</Table.Td>
                <Table.Td>{percent(g.passRate)}</Table.Td>
                <Table.Td>{percent(g.meanScore)}</Table.Td>
                <Table.Td>{side.finishedAt ? new Date(side.finishedAt).toLocaleString() : "—"}</Table.Td>
              </Table.Tr>
            ));
          })}
        </Table.Tbody>
      </Table>
      {c ? (
        <Paper withBorder p="md" data-testid="approval-comparison">
          <Badge color={c.significant ? OK_COLOR : "gray.7"} mb="xs">
            {c.significant ? "Significant difference" : "No significant difference"}
          </Badge>
          <Text fw={700}>{verdictHeadline(c)}</Text>
          <Text size="sm">{c.verdict}</Text>
          <Text size="sm" mt="xs">
            {c.cases} paired cases. Method: {methodText(c)}
          </Text>
          <Anchor
            size="sm"
            component={Link}
            to={`/evals/compare?run=${encodeURIComponent((c.a as { evalRunId: string }).evalRunId)}&against=${encodeURIComponent((c.b as { evalRunId: string }).evalRunId)}&a=${encodeURIComponent(
              (c.a as { versionId?: string }).versionId ?? "",
            )}&b=${encodeURIComponent((c.b as { versionId?: string }).versionId ?? "")}`}
          >
            Open the full comparison
          </Anchor>
        </Paper>
      ) : (
        <Text size="sm" data-testid="evaluation-note">
          No paired comparison: {note}.
        </Text>
      )}
    </Stack>
  );
}

export function ApprovalDetail() {
  const { requestId = "" } = useParams();
  const review = useQuery({
    queryKey: ["approval", requestId],
    queryFn: () => unwrap(api.GET("/api/v1/approvals/{request_id}", { params: { path: { request_id: requestId } } })),
  });
  if (review.isLoading) return <Loader role="status" aria-label="Loading the approval request" />;
  if (review.error || !review.data) return <ErrorNotice error={review.error} />;
  const data = review.data;
  const r = data.request;
  return (
    <Stack>
      <Group justify="space-between">
        <Group>
          <Title order={1} size="h2">
            Approval request {r.id}
          </Title>
          <ApprovalStatusBadge status={r.status} />
        </Group>
        <Anchor component={Link} to="/approvals">
          All approval requests
        </Anchor>
      </Group>
      <Summary review={data} />
      <Title order={2} size="h3">
        Decision
      </Title>
      <DecisionPanel review={data} />
      <Title order={2} size="h3">
        Decisions so far
      </Title>
      <Decisions decisions={r.decisions} />
      <Title order={2} size="h3">
        Changes {data.diff ? `(${data.diff.from} → ${data.diff.to})` : ""}
      </Title>
      {data.diff ? <DiffView diff={data.diff} /> : <Text size="sm">{r.label} has no version to compare with: the whole version is new to it.</Text>}
      <Title order={2} size="h3">
        Lint
      </Title>
      <Lint lint={data.lint} />
      <Title order={2} size="h3">
        Evaluation
      </Title>
      <Evaluation review={data} />
    </Stack>
  );
}
