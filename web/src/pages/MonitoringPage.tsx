// Production monitoring of one prompt label: volume, errors, latency, cost, feedback and the online-evaluation
// pass rate over time (from the server's rollups), the versions that served the label, and a drift check of a
// current window against a baseline. The prompt, label and range live in the address, so a view is a link.
import { BarChart, LineChart, type LineChartProps } from "@mantine/charts";
import { Badge, Button, Group, Loader, Paper, Select, SimpleGrid, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { useSearchParams } from "react-router";
import { api, unwrap } from "../api/client";
import { ErrorNotice } from "../components/ErrorNotice";
import { TableHead } from "../components/TableHead";
import { ChartFigure, NumbersTable, type Column } from "./dashboards/ChartFigure";
import { money, ms, pct } from "./dashboards/model";
import {
  DRIFT_WINDOWS,
  MONITOR_RANGES,
  chartRows,
  monitorQuery,
  servingText,
  signalRows,
  type ChartRow,
  type Series,
  type SignalRow,
} from "./monitoring/model";

const NOT_FOCUSABLE = { accessibilityLayer: false };
const DRAWING = { h: 200, dataKey: "bucket" };

function Lines(props: Omit<LineChartProps, "h" | "dataKey">) {
  return <LineChart {...DRAWING} lineChartProps={NOT_FOCUSABLE} {...props} />;
}

function Stat({ label, value }: { label: string; value: string }) {
  return (
    <Paper withBorder p="sm" role="group" aria-label={label}>
      <Text size="sm" c="dimmed">
        {label}
      </Text>
      <Text size="xl" fw={700}>
        {value}
      </Text>
    </Paper>
  );
}

const VERSION_COLUMNS: Column<Series["versions"][number]>[] = [
  { title: "Version", cell: (v) => (v.version == null ? v.versionId : `v${v.version}`) },
  { title: "Served the label (UTC)", cell: servingText },
  { title: "Runs", cell: (v) => v.totals.runs },
  { title: "Error rate", cell: (v) => pct(v.totals.errorRate) },
  { title: "p50", cell: (v) => ms(v.totals.latencyP50Ms) },
  { title: "p95", cell: (v) => ms(v.totals.latencyP95Ms) },
  { title: "Cost", cell: (v) => money(v.totals.costUsd) },
  { title: "Feedback", cell: (v) => (v.totals.feedbackMean == null ? "—" : v.totals.feedbackMean.toFixed(2)) },
  { title: "Online pass rate", cell: (v) => pct(v.totals.onlineEvalPassRate) },
];

const bucketColumn: Column<ChartRow> = { title: "Bucket", cell: (r) => r.bucket };

export function DriftPanel({ prompt, label }: { prompt: string; label: string }) {
  const [choice, setChoice] = useState(DRIFT_WINDOWS[1].value);
  const [asked, setAsked] = useState<string | null>(null);
  const windows = DRIFT_WINDOWS.find((w) => w.value === choice) ?? DRIFT_WINDOWS[1];
  const drift = useQuery({
    queryKey: ["monitoring", "drift", prompt, label, asked],
    enabled: asked !== null && prompt !== "",
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/monitoring/prompts/{name}/drift", {
          params: { path: { name: prompt }, query: { label, windowMinutes: windows.window, baselineMinutes: windows.baseline } },
        }),
      ),
  });
  const rows = drift.data ? signalRows(drift.data) : [];
  const columns: Column<SignalRow>[] = [
    { title: "Signal", cell: (r) => r.title },
    { title: "Drifted", cell: (r) => (r.drifted ? <Badge color="red.9">drifted</Badge> : "no") },
    { title: "Statistic", cell: (r) => r.statistic },
    { title: "Detail", cell: (r) => r.detail },
  ];
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="drift-title">
      <Stack gap="xs">
        <Title order={2} size="h4" id="drift-title">
          Drift
        </Title>
        <Group align="end">
          <Select
            label="Compare"
            data={DRIFT_WINDOWS.map((w) => ({ value: w.value, label: w.label }))}
            value={choice}
            allowDeselect={false}
            onChange={(v) => v && setChoice(v)}
            w={320}
          />
          <Button onClick={() => setAsked(`${choice}:${Date.now()}`)} disabled={!prompt} loading={drift.isFetching}>
            Check drift
          </Button>
        </Group>
        <ErrorNotice error={drift.error} />
        {drift.data && (
          <>
            <Text role="status" fw={700} c={drift.data.drifted ? "red.9" : undefined}>
              {drift.data.drifted
                ? `Drift detected: ${rows.filter((r) => r.drifted).map((r) => r.title).join(", ")}.`
                : "No drift detected."}{" "}
              Current window {drift.data.current.runs} runs, baseline {drift.data.baseline.runs} runs (alpha {drift.data.alpha}).
            </Text>
            {rows.length > 0 && <NumbersTable label="Drift signals" columns={columns} rows={rows} />}
            {drift.data.skipped.length > 0 && (
              <Table aria-label="Signals not computed">
                <TableHead columns={["Not computed", "Why"]} />
                <Table.Tbody>
                  {drift.data.skipped.map((s) => (
                    <Table.Tr key={s.name}>
                      <Table.Td>{s.name}</Table.Td>
                      <Table.Td>{s.reason}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )}
            {drift.data.runIds.length > 0 && (
              <Text size="sm">
                {drift.data.runIds.length} runs of the current window to review, e.g. {drift.data.runIds.slice(0, 3).join(", ")}.
              </Text>
            )}
          </>
        )}
      </Stack>
    </Paper>
  );
}

export default function MonitoringPage() {
  const [params, setParams] = useSearchParams();
  const [now, setNow] = useState(() => Date.now());
  const q = useMemo(() => monitorQuery(params, now), [params, now]);

  function setParam(key: string, value: string | null) {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  }

  const series = useQuery({
    queryKey: ["monitoring", "series", q],
    enabled: q.prompt !== "",
    placeholderData: keepPreviousData,
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/monitoring/prompts/{name}", {
          params: { path: { name: q.prompt }, query: { label: q.label, from: q.from, to: q.to, bucket: q.bucket } },
        }),
      ),
  });
  const data = series.data;
  const rows = data ? chartRows(data) : [];
  const t = data?.totals;
  const noRuns = t && t.runs === 0 ? "No production runs of this label in the range." : null;
  const unit = `per ${q.bucket} (UTC)`;

  return (
    <Stack>
      <Group justify="space-between" align="end">
        <Title order={1} size="h2">
          Monitoring
        </Title>
        <Button variant="default" onClick={() => setNow(Date.now())}>
          Refresh
        </Button>
      </Group>
      <Group align="end" wrap="wrap">
        <TextInput
          label="Prompt"
          placeholder="e.g. support/triage"
          defaultValue={q.prompt}
          onBlur={(e) => setParam("prompt", e.currentTarget.value.trim() || null)}
          onKeyDown={(e) => e.key === "Enter" && setParam("prompt", e.currentTarget.value.trim() || null)}
          w={240}
        />
        <TextInput
          label="Label"
          description="* for every version"
          defaultValue={q.label}
          onBlur={(e) => setParam("label", e.currentTarget.value.trim() || null)}
          w={150}
        />
        <Select
          label="Time range"
          data={MONITOR_RANGES.map((r) => ({ value: r.value, label: r.label }))}
          value={q.range}
          allowDeselect={false}
          onChange={(v) => setParam("range", v)}
          w={170}
        />
      </Group>
      {!q.prompt && <Text>Choose a prompt to see how its versions do in production.</Text>}
      <ErrorNotice error={series.error} />
      {series.isLoading && <Loader role="status" aria-label="Loading the monitoring charts" />}
      {data && t && (
        <>
          <Text size="sm" c="dimmed">
            {data.promptName}@{data.label ?? "*"}: {new Date(data.from).toUTCString()} to {new Date(data.to).toUTCString()}
          </Text>
          <SimpleGrid cols={{ base: 2, sm: 3, lg: 6 }}>
            <Stat label="Runs" value={t.runs.toLocaleString("en-US")} />
            <Stat label="Error rate" value={pct(t.errorRate)} />
            <Stat label="Latency p95" value={ms(t.latencyP95Ms)} />
            <Stat label="Cost" value={money(t.costUsd)} />
            <Stat label="Feedback mean" value={t.feedbackMean == null ? "—" : t.feedbackMean.toFixed(2)} />
            <Stat label="Online pass rate" value={pct(t.onlineEvalPassRate)} />
          </SimpleGrid>
          <Paper withBorder p="md">
            <Title order={2} size="h4" mb="xs">
              Versions
            </Title>
            {data.versions.length === 0 ? (
              <Text>No version served this label in the range.</Text>
            ) : (
              <NumbersTable label="Versions" columns={VERSION_COLUMNS} rows={data.versions} />
            )}
          </Paper>
          <SimpleGrid cols={{ base: 1, md: 2 }}>
            <ChartFigure
              title={`Volume ${unit}`}
              caption="Stacked bars: successful and failed runs in each bucket."
              empty={noRuns}
              rows={rows}
              columns={[bucketColumn, { title: "Succeeded", cell: (r) => r.ok }, { title: "Failed", cell: (r) => r.errors }]}
              chart={
                <BarChart
                  {...DRAWING}
                  barChartProps={NOT_FOCUSABLE}
                  data={rows}
                  type="stacked"
                  series={[
                    { name: "ok", label: "Succeeded", color: "blue.8" },
                    { name: "errors", label: "Failed", color: "red.9" },
                  ]}
                  withLegend
                />
              }
            />
            <ChartFigure
              title={`Error rate ${unit}`}
              caption="A line of the share of runs that failed, in percent."
              empty={noRuns}
              rows={rows}
              columns={[bucketColumn, { title: "Error rate", cell: (r) => (r.errorRate == null ? "—" : `${r.errorRate}%`) }]}
              chart={<Lines data={rows} series={[{ name: "errorRate", label: "Error rate", color: "red.9" }]} connectNulls={false} />}
            />
            <ChartFigure
              title={`Latency ${unit}`}
              caption="Lines of the median (p50) and 95th percentile (p95) latency in milliseconds."
              empty={noRuns}
              rows={rows}
              columns={[bucketColumn, { title: "p50", cell: (r) => ms(r.p50) }, { title: "p95", cell: (r) => ms(r.p95) }]}
              chart={
                <Lines
                  data={rows}
                  series={[
                    { name: "p50", label: "p50", color: "teal.8" },
                    { name: "p95", label: "p95", color: "orange.8" },
                  ]}
                  withLegend
                />
              }
            />
            <ChartFigure
              title={`Cost ${unit}`}
              caption="A line of the cost in US dollars and the tokens used in each bucket."
              empty={noRuns}
              rows={rows}
              columns={[bucketColumn, { title: "Cost", cell: (r) => money(r.cost) }, { title: "Tokens", cell: (r) => r.tokens }]}
              chart={<Lines data={rows} series={[{ name: "cost", label: "Cost", color: "grape.8" }]} valueFormatter={(v) => money(v)} />}
            />
            <ChartFigure
              title={`Feedback ${unit}`}
              caption="A line of the mean feedback score (1 to 5) in each bucket."
              empty={rows.some((r) => r.feedbackCount > 0) ? null : "No scored feedback in the range."}
              rows={rows}
              columns={[
                bucketColumn,
                { title: "Mean score", cell: (r) => (r.feedback == null ? "—" : r.feedback) },
                { title: "Ratings", cell: (r) => r.feedbackCount },
              ]}
              chart={<Lines data={rows} series={[{ name: "feedback", label: "Mean score", color: "indigo.8" }]} yAxisProps={{ domain: [1, 5] }} connectNulls />}
            />
            <ChartFigure
              title={`Online pass rate ${unit}`}
              caption="A line of the share, in percent, of sampled production runs that passed the online evaluation."
              empty={rows.some((r) => r.scored > 0) ? null : "No online evaluation scores in the range."}
              rows={rows}
              columns={[
                bucketColumn,
                { title: "Pass rate", cell: (r) => (r.passRate == null ? "—" : `${r.passRate}%`) },
                { title: "Scored", cell: (r) => r.scored },
              ]}
              chart={<Lines data={rows} series={[{ name: "passRate", label: "Pass rate", color: "teal.9" }]} yAxisProps={{ domain: [0, 100] }} connectNulls />}
            />
          </SimpleGrid>
        </>
      )}
      {q.prompt && <DriftPanel prompt={q.prompt} label={q.label} />}
    </Stack>
  );
}
