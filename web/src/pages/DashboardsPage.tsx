// Dashboards for product managers: usage, cost, latency and error rate per bucket, the prompts that cost most
// and fail most, and feedback and evaluation trends. Everything is aggregated on the server (the runs rollup),
// and the range, bucket, grouping and prompt filter live in the address so a view is a link.
import { AreaChart, BarChart, LineChart, type LineChartProps } from "@mantine/charts";
import { Anchor, Button, Group, Loader, Paper, Select, SimpleGrid, Stack, Text, TextInput, Title } from "@mantine/core";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { api, unwrap, type Query, type Schemas } from "../api/client";
import { ErrorNotice } from "../components/ErrorNotice";
import { promptUrl } from "../paths";
import { ChartFigure, NumbersTable, type Column } from "./dashboards/ChartFigure";
import {
  GROUPS,
  RANGES,
  SERIES_COLORS,
  bucketLabel,
  money,
  ms,
  pct,
  pivot,
  rangeFrom,
  round,
  totalsRows,
  type GroupBy,
  type Row,
} from "./dashboards/model";

type TopItem = Schemas["TopItem"];
// The drawings are hidden from assistive technology (their numbers are tables), so they must not take focus.
const NOT_FOCUSABLE = { accessibilityLayer: false };
const DRAWING = { h: 220, dataKey: "bucket" };

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

function promptCell(item: TopItem) {
  const name = item.key.promptName;
  return name ? (
    <Anchor component={Link} to={promptUrl(name)}>
      {name}
    </Anchor>
  ) : (
    item.key.label
  );
}

const TOP_COLUMNS: Column<TopItem>[] = [
  { title: "Prompt", cell: promptCell },
  { title: "Runs", cell: (i) => i.runs },
  { title: "Errors", cell: (i) => `${i.errors} (${pct(i.errorRate)})` },
  { title: "Cost", cell: (i) => money(i.costUsd) },
  { title: "Latency p95", cell: (i) => ms(i.latencyMsP95) },
];

function TopTable({ title, query }: { title: string; query: Query<"/api/v1/analytics/top"> }) {
  const top = useQuery({
    queryKey: ["analytics", "top", query],
    queryFn: () => unwrap(api.GET("/api/v1/analytics/top", { params: { query } })),
    placeholderData: keepPreviousData,
  });
  return (
    <Paper withBorder p="md">
      <Stack gap="xs">
        <Title order={2} size="h4">
          {title}
        </Title>
        <ErrorNotice error={top.error} />
        {top.isLoading && <Loader role="status" aria-label={`Loading ${title.toLowerCase()}`} />}
        {top.data && top.data.items.length === 0 && <Text>No runs in this range.</Text>}
        {top.data && top.data.items.length > 0 && <NumbersTable label={title} columns={TOP_COLUMNS} rows={top.data.items} />}
      </Stack>
    </Paper>
  );
}

export default function DashboardsPage() {
  const [params, setParams] = useSearchParams();
  const [now, setNow] = useState(() => Date.now());
  const range = useMemo(() => rangeFrom(params, now), [params, now]);
  const groupBy = (params.get("groupBy") as GroupBy | null) ?? "model";
  const prompt = params.get("prompt") ?? undefined;

  function setParam(key: string, value: string | null, extra: Record<string, string | null> = {}) {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries({ [key]: value, ...extra })) {
      if (v) next.set(k, v);
      else next.delete(k);
    }
    setParams(next, { replace: true });
  }

  const span = { from: range.from, to: range.to };
  const usageQuery = { ...span, bucket: range.bucket, groupBy: "none", prompt } as Query<"/api/v1/analytics/usage">;
  const groupedQuery = { ...usageQuery, groupBy, limit: 8 } as Query<"/api/v1/analytics/usage">;
  const qualityQuery = { ...span, bucket: range.bucket === "week" ? "week" : "day", prompt } as Query<"/api/v1/analytics/quality">;
  const totals = useQuery({
    queryKey: ["analytics", "usage", usageQuery],
    queryFn: () => unwrap(api.GET("/api/v1/analytics/usage", { params: { query: usageQuery } })),
    placeholderData: keepPreviousData,
  });
  const grouped = useQuery({
    queryKey: ["analytics", "usage", groupedQuery],
    queryFn: () => unwrap(api.GET("/api/v1/analytics/usage", { params: { query: groupedQuery } })),
    placeholderData: keepPreviousData,
  });
  const quality = useQuery({
    queryKey: ["analytics", "quality", qualityQuery],
    queryFn: () => unwrap(api.GET("/api/v1/analytics/quality", { params: { query: qualityQuery } })),
    placeholderData: keepPreviousData,
  });

  const rows = totals.data ? totalsRows(totals.data) : [];
  const t = totals.data?.totals;
  const noRuns = totals.data && t?.runs === 0 ? "No runs in this range." : null;
  const groupLabel = GROUPS.find((g) => g.value === groupBy)?.label.toLowerCase() ?? groupBy;
  const unit = `per ${range.bucket} (UTC)`;
  const keys = grouped.data?.keys ?? [];
  const costRows = grouped.data ? pivot(grouped.data, (p) => round(p.costUsd, 6)) : [];
  const costColumns: Column<Row>[] = [
    { title: range.bucket === "hour" ? "Hour" : range.bucket === "day" ? "Day" : "Week", cell: (r) => r.bucket },
    ...keys.map((k) => ({ title: k.label, cell: (r: Row) => money(Number(r[k.key] ?? 0)) })),
  ];
  const feedbackRows = (quality.data?.feedback ?? []).map((p) => ({
    bucket: bucketLabel(p.bucketStart, quality.data!.bucket),
    score: p.meanScore,
    count: p.count,
    up: p.thumbsUp,
    down: p.thumbsDown,
  }));
  const evalRows = (quality.data?.evals ?? []).map((p) => ({
    bucket: bucketLabel(p.bucketStart, quality.data!.bucket),
    score: p.meanScore == null ? null : round(p.meanScore * 100, 1),
    passRate: p.passRate,
    evaluations: p.evaluations,
    results: p.results,
  }));

  return (
    <Stack>
      <Group justify="space-between" align="end">
        <Title order={1} size="h2">
          Dashboards
        </Title>
        <Button variant="default" onClick={() => setNow(Date.now())}>
          Refresh
        </Button>
      </Group>
      <Group align="end" wrap="wrap">
        <Select
          label="Time range"
          data={RANGES.map((r) => ({ value: r.value, label: r.label }))}
          value={range.name}
          allowDeselect={false}
          onChange={(v) =>
            v === "custom"
              ? setParam("range", "custom", { from: range.from, to: range.to })
              : setParam("range", v, { from: null, to: null, bucket: null })
          }
          w={170}
        />
        {range.name === "custom" && (
          <>
            <TextInput
              label="From (UTC)"
              type="datetime-local"
              defaultValue={range.from.slice(0, 16)}
              onBlur={(e) => e.currentTarget.value && setParam("from", new Date(`${e.currentTarget.value}Z`).toISOString())}
            />
            <TextInput
              label="To (UTC)"
              type="datetime-local"
              defaultValue={range.to.slice(0, 16)}
              onBlur={(e) => e.currentTarget.value && setParam("to", new Date(`${e.currentTarget.value}Z`).toISOString())}
            />
          </>
        )}
        <Select
          label="Bucket"
          data={[
            { value: "hour", label: "Hour" },
            { value: "day", label: "Day" },
            { value: "week", label: "Week" },
          ]}
          value={range.bucket}
          allowDeselect={false}
          onChange={(v) => setParam("bucket", v)}
          w={110}
        />
        <Select
          label="Group cost by"
          data={GROUPS}
          value={groupBy}
          allowDeselect={false}
          onChange={(v) => setParam("groupBy", v)}
          w={170}
        />
        <TextInput
          label="Prompt"
          placeholder="all prompts"
          defaultValue={prompt}
          onBlur={(e) => setParam("prompt", e.currentTarget.value.trim() || null)}
          w={200}
        />
      </Group>
      <Text size="sm" c="dimmed">
        {new Date(totals.data?.from ?? range.from).toUTCString()} to {new Date(totals.data?.to ?? range.to).toUTCString()}, in
        whole {range.bucket}s
      </Text>
      <ErrorNotice error={totals.error ?? grouped.error ?? quality.error} />
      {totals.isLoading && <Loader role="status" aria-label="Loading the dashboards" />}
      {t && (
        <SimpleGrid cols={{ base: 2, sm: 3, lg: 6 }}>
          <Stat label="Runs" value={t.runs.toLocaleString("en-US")} />
          <Stat label="Errors" value={t.errors.toLocaleString("en-US")} />
          <Stat label="Error rate" value={pct(t.errorRate)} />
          <Stat label="Cost" value={money(t.costUsd)} />
          <Stat label="Latency p50" value={ms(t.latencyMsP50)} />
          <Stat label="Latency p95" value={ms(t.latencyMsP95)} />
        </SimpleGrid>
      )}
      {totals.data && (
        <SimpleGrid cols={{ base: 1, md: 2 }}>
          <ChartFigure
            title={`Runs ${unit}`}
            caption="Stacked bars: successful runs and failed runs in each bucket."
            empty={noRuns}
            rows={rows}
            columns={[
              { title: "Bucket", cell: (r) => r.bucket },
              { title: "Succeeded", cell: (r) => r.ok },
              { title: "Failed", cell: (r) => r.errors },
            ]}
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
            caption="A line of the share of runs that failed in each bucket, in percent."
            empty={noRuns}
            rows={rows}
            columns={[
              { title: "Bucket", cell: (r) => r.bucket },
              { title: "Error rate", cell: (r) => (r.errorRate == null ? "—" : `${r.errorRate}%`) },
            ]}
            chart={
              <Lines
                data={rows}
                series={[{ name: "errorRate", label: "Error rate", color: "red.9" }]}
                valueFormatter={(v) => `${v}%`}
                connectNulls={false}
              />
            }
          />
          <ChartFigure
            title={`Latency ${unit}`}
            caption="Lines of the median (p50) and 95th percentile (p95) latency in milliseconds, estimated from a histogram."
            empty={noRuns}
            rows={rows}
            columns={[
              { title: "Bucket", cell: (r) => r.bucket },
              { title: "p50", cell: (r) => ms(r.p50 as number | null) },
              { title: "p95", cell: (r) => ms(r.p95 as number | null) },
              { title: "Mean", cell: (r) => ms(r.avg as number | null) },
            ]}
            chart={
              <Lines
                data={rows}
                series={[
                  { name: "p50", label: "p50", color: "teal.8" },
                  { name: "p95", label: "p95", color: "orange.8" },
                ]}
                valueFormatter={(v) => `${Math.round(v)} ms`}
                withLegend
              />
            }
          />
          <ChartFigure
            title={`Cost ${unit} by ${groupLabel}`}
            caption={`Stacked areas: the cost in US dollars of each ${groupLabel} in each bucket (the largest ${keys.length} shown).`}
            empty={noRuns}
            rows={costRows}
            columns={costColumns}
            chart={
              <AreaChart
                {...DRAWING}
                areaChartProps={NOT_FOCUSABLE}
                data={costRows}
                type="stacked"
                series={keys.map((k, i) => ({ name: k.key, label: k.label, color: SERIES_COLORS[i % SERIES_COLORS.length] }))}
                valueFormatter={(v) => money(v)}
                withLegend
              />
            }
          />
        </SimpleGrid>
      )}
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <TopTable title="Top prompts by cost" query={{ ...span, by: "prompt", metric: "cost", limit: 10 }} />
        <TopTable title="Top prompts by errors" query={{ ...span, by: "prompt", metric: "errors", limit: 10 }} />
      </SimpleGrid>
      {quality.data && (
        <SimpleGrid cols={{ base: 1, md: 2 }}>
          <ChartFigure
            title={`Feedback score per ${quality.data.bucket} (UTC)`}
            caption="A line of the mean feedback score (1 to 5) in each bucket."
            empty={feedbackRows.some((r) => r.count > 0) ? null : "No feedback in this range."}
            rows={feedbackRows}
            columns={[
              { title: "Bucket", cell: (r) => r.bucket },
              { title: "Mean score", cell: (r) => (r.score == null ? "—" : r.score) },
              { title: "Ratings", cell: (r) => r.count },
              { title: "Thumbs up / down", cell: (r) => `${r.up} / ${r.down}` },
            ]}
            chart={
              <Lines
                data={feedbackRows}
                series={[{ name: "score", label: "Mean score", color: "grape.8" }]}
                yAxisProps={{ domain: [1, 5] }}
                connectNulls
              />
            }
          />
          <ChartFigure
            title={`Evaluation score per ${quality.data.bucket} (UTC)`}
            caption="A line of the mean score, in percent, of the evaluations that finished in each bucket."
            empty={evalRows.some((r) => r.evaluations > 0) ? null : "No evaluation finished in this range."}
            rows={evalRows}
            columns={[
              { title: "Bucket", cell: (r) => r.bucket },
              { title: "Mean score", cell: (r) => (r.score == null ? "—" : `${r.score}%`) },
              { title: "Pass rate", cell: (r) => pct(r.passRate) },
              { title: "Evaluations", cell: (r) => r.evaluations },
            ]}
            chart={
              <Lines
                data={evalRows}
                series={[{ name: "score", label: "Mean score", color: "indigo.8" }]}
                yAxisProps={{ domain: [0, 100] }}
                valueFormatter={(v) => `${v}%`}
                connectNulls
              />
            }
          />
        </SimpleGrid>
      )}
    </Stack>
  );
}
