// One optimization (/optimize/<id>): its status while it runs (polled), the trajectory chart, every candidate
// with its text one click away, cancel, and "Promote winner": a label moved to the winning version after a
// confirmation that shows the diff.
import { Anchor, Badge, Button, Group, Loader, Progress, SimpleGrid, Stack, Table, Text, Title, Tooltip } from "@mantine/core";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Fragment } from "react";
import { Link, useParams } from "react-router";
import { api, unwrap } from "../api/client";
import { useCan } from "../auth";
import { OK_COLOR } from "../colors";
import { ErrorNotice } from "../components/ErrorNotice";
import { TableHead } from "../components/TableHead";
import { promptUrl } from "../paths";
import { ACTIVE_STATUSES, POLL_MS, promptNameOf, score, trajectoryPoints, winnerOf, type Candidate, type Optimization } from "./optimize/model";
import { ShowTextButton, TextRow, useOpenRows } from "./optimize/ExpandableText";
import { PromoteLabel } from "./optimize/PromoteLabel";
import { StatusBadge } from "./optimize/StatusBadge";
import { TrajectoryChart } from "./optimize/TrajectoryChart";

const CANDIDATE_COLUMNS = ["Round", "Strategy", "Status", "Train score", "Validation score", "Calls", "Tokens", "Text"];

function CandidatesTable({ candidates, winnerId }: { candidates: Candidate[]; winnerId: string | null }) {
  const rows = useOpenRows();
  if (candidates.length === 0) return <Text>No candidate yet.</Text>;
  return (
    <Table aria-label="Candidates" striped>
      <TableHead columns={CANDIDATE_COLUMNS} />
      <Table.Tbody>
        {candidates.map((c) => {
          const what = `${c.strategy} (round ${c.round})`;
          return (
            <Fragment key={c.id}>
              <Table.Tr>
                <Table.Td>{c.round}</Table.Td>
                <Table.Td>
                  {c.strategy}{" "}
                  {c.id === winnerId && (
                    <Badge size="sm" color={OK_COLOR}>
                      winner
                    </Badge>
                  )}
                </Table.Td>
                <Table.Td>{c.status}</Table.Td>
                <Table.Td>{score(c.trainScore)}</Table.Td>
                <Table.Td>{score(c.valScore)}</Table.Td>
                <Table.Td>{c.calls}</Table.Td>
                <Table.Td>{c.tokens}</Table.Td>
                <Table.Td>
                  <ShowTextButton open={rows.isOpen(c.id)} what={what} onClick={() => rows.toggle(c.id)} />
                </Table.Td>
              </Table.Tr>
              <TextRow open={rows.isOpen(c.id)} what={what} text={c.template} columns={CANDIDATE_COLUMNS.length} />
            </Fragment>
          );
        })}
      </Table.Tbody>
    </Table>
  );
}

function CancelButton({ optimization }: { optimization: Optimization }) {
  const canOptimize = useCan("prompt:optimize");
  const client = useQueryClient();
  const cancel = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/optimizations/{optimization_id}/cancel", { params: { path: { optimization_id: optimization.id } } })),
    onSuccess: (data) => client.setQueryData(["optimization", optimization.id], data),
  });
  if (!ACTIVE_STATUSES.has(optimization.status)) return null;
  const button = (
    <Button color="red.9" variant="outline" disabled={!canOptimize || optimization.cancelRequested} loading={cancel.isPending} onClick={() => cancel.mutate()}>
      {optimization.cancelRequested ? "Cancelling…" : "Cancel"}
    </Button>
  );
  return (
    <>
      {canOptimize ? button : <Tooltip label="Your role cannot run optimizations (prompt:optimize)">{button}</Tooltip>}
      <ErrorNotice error={cancel.error} />
    </>
  );
}

function Outcome({ optimization }: { optimization: Optimization }) {
  const winner = winnerOf(optimization);
  const name = promptNameOf(optimization);
  const report = optimization.report as { summary?: string; stopReason?: string; improvementPoints?: number; promotion?: { label: string; promoted: boolean; detail?: string } };
  if (!winner) return null;
  const what = winner.version ? `v${winner.version}` : winner.versionId;
  return (
    <Stack>
      <Title order={2} size="h4">
        Result
      </Title>
      <Text>
        {winner.keptBaseline
          ? `No candidate beat the starting version; the winner is the starting version ${what}.`
          : `The winner is saved as ${name} ${what}`}
        {!winner.keptBaseline && report.improvementPoints !== undefined && ` (${report.improvementPoints >= 0 ? "+" : ""}${report.improvementPoints.toFixed(1)} points on validation).`}
      </Text>
      {report.summary && <Text size="sm">{report.summary}</Text>}
      {report.stopReason && <Text size="sm">Stopped because: {report.stopReason}</Text>}
      {report.promotion && (
        <Text size="sm">
          Automatic promotion of {report.promotion.label}: {report.promotion.promoted ? "done" : `not done (${report.promotion.detail ?? "refused"})`}
        </Text>
      )}
      <Anchor component={Link} to={promptUrl(name, "versions")}>
        Open {name}
      </Anchor>
      <PromoteLabel
        promptName={name}
        versionId={winner.versionId}
        what={`the winner (${what})`}
        baseVersionId={optimization.baseVersionId}
        buttonLabel="Promote winner"
        defaultReason={`Winner of optimization ${optimization.id}`}
      />
    </Stack>
  );
}

export default function OptimizationPage() {
  const { optimizationId = "" } = useParams();
  const path = { optimization_id: optimizationId };
  const poll = (status: string | undefined) => (status && ACTIVE_STATUSES.has(status) ? POLL_MS : false);
  const optimization = useQuery({
    queryKey: ["optimization", optimizationId],
    queryFn: () => unwrap(api.GET("/api/v1/optimizations/{optimization_id}", { params: { path } })),
    refetchInterval: (query) => poll(query.state.data?.status),
  });
  const status = optimization.data?.status;
  const candidates = useQuery({
    queryKey: ["optimization", optimizationId, "candidates", status],
    queryFn: () => unwrap(api.GET("/api/v1/optimizations/{optimization_id}/candidates", { params: { path } })),
    refetchInterval: poll(status),
    enabled: Boolean(status),
    placeholderData: keepPreviousData, // the key changes with the status: keep the table while it refetches
  });
  if (optimization.isLoading) return <Loader role="status" aria-label="Loading the optimization" />;
  if (optimization.error) return <ErrorNotice error={optimization.error} />;
  const o = optimization.data!;
  const name = promptNameOf(o);
  const spec = o.spec as { version?: number; dataset?: { name?: string; version?: number } };
  const items = candidates.data?.items ?? [];
  const active = ACTIVE_STATUSES.has(o.status);
  return (
    <Stack>
      <Group justify="space-between">
        <Group>
          <Title order={1} size="h2">
            Optimization {o.id}
          </Title>
          <span data-testid="optimization-status">
            <StatusBadge status={o.status} />
          </span>
        </Group>
        <CancelButton optimization={o} />
      </Group>
      <SimpleGrid cols={{ base: 2, md: 4 }}>
        <Text>
          Prompt:{" "}
          <Anchor component={Link} to={promptUrl(name)}>
            {name}
          </Anchor>{" "}
          v{spec.version}
        </Text>
        <Text>
          Dataset: {spec.dataset?.name} v{spec.dataset?.version}
        </Text>
        <Text>
          Phase: {o.phase}, round {o.round}
        </Text>
        <Text>Best train score: {score(o.bestTrainScore)}</Text>
      </SimpleGrid>
      <Stack gap={4}>
        <Text size="sm" id="budget-label">
          Model calls: {o.callsUsed} of {o.budget}
        </Text>
        <Progress.Root>
          <Progress.Section value={Math.min(100, (100 * o.callsUsed) / Math.max(1, o.budget))} aria-labelledby="budget-label" animated={active} />
        </Progress.Root>
      </Stack>
      {o.error && <ErrorNotice error={new Error(o.error)} title="The optimization failed" />}
      <Outcome optimization={o} />
      <TrajectoryChart points={trajectoryPoints(items)} />
      <Title order={2} size="h4">
        Candidates ({items.length})
      </Title>
      <ErrorNotice error={candidates.error} />
      {candidates.isLoading ? <Loader size="sm" role="status" aria-label="Loading the candidates" /> : <CandidatesTable candidates={items} winnerId={winnerOf(o)?.candidateId ?? null} />}
    </Stack>
  );
}
