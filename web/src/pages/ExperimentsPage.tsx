// Live experiments (/experiments): the list (filtered by status, kept in the address) and one experiment
// (/experiments/:experimentId): its arms with their guardrail state, the sample-ratio check, per-metric results
// with per-arm intervals and the always-valid test, the primary metric's intervals over time, a bandit's
// allocation over time and regret, and the lifecycle buttons (start, pause, resume, stop, ship, reallocate), each
// shown disabled with the reason when the signed-in role lacks experiment:manage.
import { Alert, Anchor, Badge, Button, Group, Paper, Select, Stack, Table, Text, Title, Tooltip } from "@mantine/core";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router";
import { api, unwrap, type Query, type Schemas } from "../api/client";
import { useCan } from "../auth";
import { OK_COLOR } from "../colors";
import { ErrorNotice } from "../components/ErrorNotice";
import { Pager, useCursorPages } from "../components/Paging";
import { TableHead } from "../components/TableHead";
import { useUrlFilters } from "../urlFilters";

type Experiment = Schemas["ExperimentOut"];
type Results = Schemas["ResultsOut"];
type Snapshot = Schemas["SnapshotOut"];
type Status = Experiment["status"];

export const STATUS_COLOR: Record<Status, string> = {
  draft: "gray.7",
  running: OK_COLOR,
  paused: "#8f5b00",
  stopped: "gray.7",
  shipped: "blue.9",
};
// Arm colours for the charts (distinct, AA contrast on white).
export const ARM_COLORS = ["#1f4e9c", "#b3261e", "#1e6b2e", "#8f5b00", "#6a1b9a", "#00695c", "#ad1457", "#37474f", "#4e342e", "#283593"];

/** A number for people: 4 significant digits, "–" for none. */
export function num(value: number | null | undefined, digits = 4): string {
  return value === null || value === undefined ? "–" : Number(value.toPrecision(digits)).toString();
}

/** "[low, high]" or "–". */
export function interval(low: number | null | undefined, high: number | null | undefined): string {
  return low === null || low === undefined || high === null || high === undefined ? "–" : `[${num(low)}, ${num(high)}]`;
}

/** Which lifecycle actions a status allows. */
export function actionsFor(status: Status): { start: boolean; pause: boolean; resume: boolean; stop: boolean; ship: boolean } {
  return {
    start: status === "draft",
    pause: status === "running",
    resume: status === "paused",
    stop: status === "draft" || status === "running" || status === "paused",
    ship: status === "running" || status === "paused" || status === "stopped",
  };
}

/** The y range that holds every mean and interval of a timeline (a little padding; a flat line gets ±1). */
export function yRange(timeline: Snapshot[]): [number, number] {
  const values = timeline.flatMap((s) => s.arms.flatMap((a) => [a.ciLow, a.ciHigh, a.mean])).filter((v): v is number => v !== null && v !== undefined);
  if (values.length === 0) return [0, 1];
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (low === high) {
    low -= 1;
    high += 1;
  }
  const pad = (high - low) * 0.05;
  return [low - pad, high + pad];
}

function StatusBadge({ status }: { status: Status }) {
  return <Badge color={STATUS_COLOR[status]}>{status}</Badge>;
}

/** Per-arm means with their intervals at each snapshot: a small chart (with a table that says the same). */
function IntervalsOverTime({ timeline, arms }: { timeline: Snapshot[]; arms: string[] }) {
  if (timeline.length === 0) {
    return <Text size="sm">No snapshot yet: the primary metric is kept every 15 minutes while the experiment runs.</Text>;
  }
  const [low, high] = yRange(timeline);
  const width = 640;
  const height = 200;
  const x = (i: number) => 40 + (timeline.length === 1 ? (width - 60) / 2 : (i * (width - 60)) / (timeline.length - 1));
  const y = (v: number) => 10 + ((high - v) / (high - low)) * (height - 30);
  return (
    <Stack gap="xs">
      <svg role="img" aria-label={`${timeline[0].metric} per arm over time, with intervals`} width="100%" viewBox={`0 0 ${width} ${height}`}>
        <text x={4} y={y(high) + 4} fontSize={10}>
          {num(high, 3)}
        </text>
        <text x={4} y={y(low)} fontSize={10}>
          {num(low, 3)}
        </text>
        {arms.map((arm, k) => {
          const color = ARM_COLORS[k % ARM_COLORS.length];
          const offset = (k - (arms.length - 1) / 2) * 4;
          const points = timeline
            .map((s, i) => ({ i, a: s.arms.find((a) => a.arm === arm) }))
            .filter((p) => p.a && p.a.mean !== null && p.a.mean !== undefined);
          return (
            <g key={arm}>
              <polyline fill="none" stroke={color} strokeWidth={1.5} points={points.map((p) => `${x(p.i) + offset},${y(p.a!.mean as number)}`).join(" ")} />
              {points.map((p) =>
                p.a!.ciLow !== null && p.a!.ciLow !== undefined && p.a!.ciHigh !== null && p.a!.ciHigh !== undefined ? (
                  <line key={p.i} x1={x(p.i) + offset} x2={x(p.i) + offset} y1={y(p.a!.ciLow)} y2={y(p.a!.ciHigh)} stroke={color} strokeWidth={3} opacity={0.5} />
                ) : null,
              )}
            </g>
          );
        })}
      </svg>
      <Group gap="md">
        {arms.map((arm, k) => (
          <Text key={arm} size="sm">
            <span style={{ color: ARM_COLORS[k % ARM_COLORS.length] }}>■</span> {arm}
          </Text>
        ))}
      </Group>
      <Table aria-label="Primary metric over time" striped>
        <TableHead columns={["When", "Units", ...arms]} />
        <Table.Tbody>
          {timeline.map((s) => (
            <Table.Tr key={s.takenAt}>
              <Table.Td>{new Date(s.takenAt).toLocaleString()}</Table.Td>
              <Table.Td>{s.exposures}</Table.Td>
              {arms.map((arm) => {
                const a = s.arms.find((x) => x.arm === arm);
                return <Table.Td key={arm}>{a ? `${num(a.mean)} ${interval(a.ciLow, a.ciHigh)}` : "–"}</Table.Td>;
              })}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}

function BanditPanel({ bandit }: { bandit: NonNullable<Results["bandit"]> }) {
  const history = bandit.allocation;
  const names = history.length ? history[history.length - 1].arms.map((a) => a.name) : [];
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="bandit-title">
      <Stack gap="xs">
        <Title order={2} size="h4" id="bandit-title">
          Bandit allocation
        </Title>
        <Text size="sm">
          Thompson sampling on {bandit.metric} ({bandit.kind}, {bandit.direction} is better). Best arm: <b>{bandit.bestArm ?? "–"}</b>. Estimated regret{" "}
          {num(bandit.regret)} ({num(bandit.regretPerUnit)} per unit).
        </Text>
        <Table aria-label="Allocation over time" striped>
          <TableHead columns={["#", "When", "Why", "Units", "Regret", ...names.map((n) => `${n} share`)]} />
          <Table.Tbody>
            {history.slice(-20).map((row) => (
              <Table.Tr key={row.seq}>
                <Table.Td>{row.seq}</Table.Td>
                <Table.Td>{new Date(row.computedAt).toLocaleString()}</Table.Td>
                <Table.Td>{row.reason}</Table.Td>
                <Table.Td>{row.exposures}</Table.Td>
                <Table.Td>{num(row.regret)}</Table.Td>
                {row.arms.map((a) => (
                  <Table.Td key={a.name}>{(a.share * 100).toFixed(1)}%</Table.Td>
                ))}
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Stack>
    </Paper>
  );
}

function MetricTable({ metric }: { metric: Results["metrics"][number] }) {
  const comparisons = new Map(metric.comparisons.map((c) => [c.arm, c]));
  return (
    <Table aria-label={`Metric ${metric.name}`} striped>
      <Table.Caption>
        {metric.name} ({metric.kind}, {metric.direction} is better{metric.guardrail ? ", guardrail" : ""}; from {metric.source})
      </Table.Caption>
      <TableHead columns={["Arm", "n", "Mean", "95% interval", "Difference", "Always-valid interval", "p", "Verdict"]} />
      <Table.Tbody>
        {metric.arms.map((a) => {
          const c = comparisons.get(a.arm);
          return (
            <Table.Tr key={a.arm}>
              <Table.Td>{a.arm}</Table.Td>
              <Table.Td>{a.n}</Table.Td>
              <Table.Td>{num(a.mean)}</Table.Td>
              <Table.Td>{interval(a.ciLow, a.ciHigh)}</Table.Td>
              <Table.Td>{c ? num(c.difference) : "control"}</Table.Td>
              <Table.Td>{c ? interval(c.sequenceLow, c.sequenceHigh) : ""}</Table.Td>
              <Table.Td>{c ? num(c.pValue, 3) : ""}</Table.Td>
              <Table.Td>{c && c.significant ? (c.better ? "better" : "worse") : c ? "no difference yet" : ""}</Table.Td>
            </Table.Tr>
          );
        })}
      </Table.Tbody>
    </Table>
  );
}

export function ExperimentDetail() {
  const { experimentId = "" } = useParams();
  const client = useQueryClient();
  const canManage = useCan("experiment:manage");
  const [shipArm, setShipArm] = useState<string | null>(null);
  const path = { params: { path: { experiment_id: experimentId } } };
  const experiment = useQuery({
    queryKey: ["experiments", "one", experimentId],
    queryFn: () => unwrap(api.GET("/api/v1/experiments/{experiment_id}", path)),
  });
  const results = useQuery({
    queryKey: ["experiments", "results", experimentId],
    queryFn: () => unwrap(api.GET("/api/v1/experiments/{experiment_id}/results", path)),
    refetchInterval: 30_000,
  });
  const refresh = () => client.invalidateQueries({ queryKey: ["experiments"] });
  const act = useMutation({
    mutationFn: async (action: "start" | "pause" | "resume" | "stop" | "ship" | "allocation") => {
      if (action === "start") return unwrap(api.POST("/api/v1/experiments/{experiment_id}/start", path));
      if (action === "pause") return unwrap(api.POST("/api/v1/experiments/{experiment_id}/pause", { ...path, body: { reason: "from the dashboard" } }));
      if (action === "resume") return unwrap(api.POST("/api/v1/experiments/{experiment_id}/resume", { ...path, body: { reason: "from the dashboard" } }));
      if (action === "stop") return unwrap(api.POST("/api/v1/experiments/{experiment_id}/stop", { ...path, body: { reason: "from the dashboard" } }));
      if (action === "ship") return unwrap(api.POST("/api/v1/experiments/{experiment_id}/ship", { ...path, body: { arm: shipArm ?? "", reason: "shipped from the dashboard" } }));
      return unwrap(api.POST("/api/v1/experiments/{experiment_id}/allocation", path));
    },
    onSuccess: refresh,
  });
  const e = experiment.data;
  if (experiment.error) return <ErrorNotice error={experiment.error} />;
  if (!e) return <Text>Loading experiment…</Text>;
  const allowed = actionsFor(e.status);
  const r = results.data;
  const why = "Your role cannot change experiments (needs experiment:manage)";
  const button = (action: "start" | "pause" | "resume" | "stop" | "allocation", label: string, color?: string) => (
    <Tooltip label={why} disabled={canManage} key={action}>
      <Button color={color} variant={action === "stop" ? "default" : "filled"} disabled={!canManage} loading={act.isPending && act.variables === action} onClick={() => act.mutate(action)}>
        {label}
      </Button>
    </Tooltip>
  );
  const violated = new Map((r?.guardrailViolations ?? []).map((v) => [v.arm, v]));
  return (
    <Stack>
      <Anchor component={Link} to="/experiments">
        All experiments
      </Anchor>
      <Group justify="space-between" align="start">
        <Stack gap={4}>
          <Title order={1} size="h2">
            {e.name}
          </Title>
          <Group gap="xs">
            <StatusBadge status={e.status} />
            <Badge variant="outline" color="gray.7">
              {e.mode === "bandit" ? "bandit" : "A/B"}
            </Badge>
            <Text size="sm">
              on{" "}
              <Anchor component={Link} to={`/prompts/${e.promptName}`}>
                {e.promptName}
              </Anchor>
              @{e.label} · alpha {e.alpha}
              {e.shippedArm ? ` · shipped ${e.shippedArm}` : ""}
            </Text>
          </Group>
        </Stack>
        <Group>
          {allowed.start && button("start", "Start")}
          {allowed.pause && button("pause", "Pause")}
          {allowed.resume && button("resume", "Resume")}
          {e.mode === "bandit" && (e.status === "running" || e.status === "paused") && button("allocation", "Recompute allocation")}
          {allowed.stop && button("stop", "Stop")}
        </Group>
      </Group>
      {e.pendingApproval && <Alert color="yellow">Shipping waits for approval: request {e.pendingApproval}.</Alert>}
      <ErrorNotice error={act.error} />
      <Table aria-label="Arms" striped>
        <TableHead columns={["Arm", "Version", "Model", "Share", "Exposures", "Guardrails"]} />
        <Table.Tbody>
          {e.arms.map((a) => {
            const exposures = r?.arms.find((x) => x.name === a.name)?.exposures;
            const v = violated.get(a.name);
            return (
              <Table.Tr key={a.name}>
                <Table.Td>
                  {a.name}
                  {a.control ? " (control)" : ""}
                </Table.Td>
                <Table.Td>v{a.version}</Table.Td>
                <Table.Td>{a.model ?? "the version's"}</Table.Td>
                <Table.Td>{(a.share * 100).toFixed(1)}%</Table.Td>
                <Table.Td>{exposures ?? "–"}</Table.Td>
                <Table.Td>{a.paused ? <Badge color="red.9">paused: {a.pausedReason}</Badge> : v ? <Badge color="#8f5b00">worse on {v.metric}</Badge> : "ok"}</Table.Td>
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
      {allowed.ship && (
        <Group align="end">
          <Select label="Arm to ship" data={e.arms.filter((a) => !a.model).map((a) => a.name)} value={shipArm} onChange={setShipArm} w={200} />
          <Tooltip label={why} disabled={canManage}>
            <Button color="blue.9" disabled={!canManage || !shipArm} loading={act.isPending && act.variables === "ship"} onClick={() => act.mutate("ship")}>
              Ship arm
            </Button>
          </Tooltip>
          <Text size="sm" c="dimmed">
            Moves {e.label} to the arm's version through the normal label path and ends the experiment.
          </Text>
        </Group>
      )}
      <ErrorNotice error={results.error} />
      {r && (
        <>
          {r.sampleRatio.mismatch ? (
            <Alert color="red" title="Sample ratio mismatch">
              The exposures do not match the arms' shares (p = {num(r.sampleRatio.pValue, 3)} &lt; {r.sampleRatio.threshold}): assignment or exposure logging is
              broken; trust no result until it is explained.
            </Alert>
          ) : (
            <Text size="sm">
              Sample ratio: ok{r.sampleRatio.pValue !== null && r.sampleRatio.pValue !== undefined ? ` (p = ${num(r.sampleRatio.pValue, 3)})` : " (not enough units yet)"}. {r.exposures} units
              exposed; {r.test}.
            </Text>
          )}
          {r.bandit && <BanditPanel bandit={r.bandit} />}
          <Title order={2} size="h4">
            {r.metrics[0]?.name} over time
          </Title>
          <IntervalsOverTime timeline={r.timeline} arms={e.arms.map((a) => a.name)} />
          <Title order={2} size="h4">
            Results
          </Title>
          {r.metrics.map((m) => (
            <MetricTable key={m.name} metric={m} />
          ))}
        </>
      )}
    </Stack>
  );
}

const FILTERS = ["status"] as const;

export default function ExperimentsPage() {
  const pages = useCursorPages();
  const { filters, setFilter } = useUrlFilters(FILTERS, pages.reset);
  const query = { status: filters.status ?? undefined, cursor: pages.cursor, limit: 50 } as Query<"/api/v1/experiments">;
  const list = useQuery({
    queryKey: ["experiments", "list", query],
    queryFn: () => unwrap(api.GET("/api/v1/experiments", { params: { query } })),
    placeholderData: keepPreviousData,
  });
  return (
    <Stack>
      <Title order={1} size="h2">
        Experiments
      </Title>
      <Text c="dimmed" size="sm">
        Live A/B tests and bandits on prompt labels. Create them with <code>promptops experiments create</code> or the API.
      </Text>
      <Select label="Status" clearable data={["draft", "running", "paused", "stopped", "shipped"]} value={filters.status ?? null} onChange={(v) => setFilter("status", v)} w={200} />
      <ErrorNotice error={list.error} />
      {list.data && list.data.items.length === 0 && <Text>No experiments{filters.status ? ` ${filters.status}` : ""}.</Text>}
      {list.data && list.data.items.length > 0 && (
        <Table aria-label="Experiments" striped highlightOnHover>
          <TableHead columns={["Experiment", "Prompt", "Mode", "Status", "Arms", "Created"]} />
          <Table.Tbody>
            {list.data.items.map((e) => (
              <Table.Tr key={e.id}>
                <Table.Td>
                  <Anchor component={Link} to={`/experiments/${e.id}`}>
                    {e.name}
                  </Anchor>
                </Table.Td>
                <Table.Td>
                  {e.promptName}@{e.label}
                </Table.Td>
                <Table.Td>{e.mode === "bandit" ? "bandit" : "A/B"}</Table.Td>
                <Table.Td>
                  <StatusBadge status={e.status} />
                </Table.Td>
                <Table.Td>{e.arms.map((a) => `${a.name} v${a.version}`).join(", ")}</Table.Td>
                <Table.Td>{new Date(e.createdAt).toLocaleString()}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Pager pages={pages} nextCursor={list.data?.nextCursor} labels={["Newer", "Older"]} />
    </Stack>
  );
}
