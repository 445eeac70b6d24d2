// A prompt's evaluation history: the mean score of each version in its latest completed evaluation on one
// dataset (a line per model), with the same numbers as a table for screen readers and for reading exact values.
import { LineChart } from "@mantine/charts";
import { Anchor, Loader, Select, Stack, Table, Text, Title, VisuallyHidden } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router";
import { api, unwrap } from "../api/client";
import { groupsOf, percent, type EvalRun, type SummaryGroup } from "../pages/evals/shared";
import { ErrorNotice } from "./ErrorNotice";
import { TableHead } from "./TableHead";

const LINE_COLORS = ["blue.8", "orange.8", "grape.8", "teal.8", "red.8", "cyan.8"];

export interface HistoryPoint {
  version: number;
  target: string;
  dataset: string;
  meanScore: number | null;
  passRate: number | null;
  runId: string;
  runName: string;
  finishedAt: string | null;
}

/** For each (dataset, version, model) of `promptName`, the aggregates of the newest completed run that has it
 * (runs come newest first), sorted by dataset, version and model. */
export function historyPoints(promptName: string, runs: EvalRun[]): HistoryPoint[] {
  const seen = new Map<string, HistoryPoint>();
  for (const run of runs) {
    if (run.status !== "completed") continue;
    const pin = run.dataset as { name?: string; version?: number };
    const dataset = pin.name ? `${pin.name}@${pin.version}` : "—";
    for (const g of groupsOf(run) as SummaryGroup[]) {
      if (g.promptName !== promptName) continue;
      const key = `${dataset}|${g.version}|${g.target}`;
      if (seen.has(key)) continue;
      seen.set(key, {
        version: g.version,
        target: g.target,
        dataset,
        meanScore: g.meanScore,
        passRate: g.passRate,
        runId: run.id,
        runName: run.name,
        finishedAt: run.finishedAt,
      });
    }
  }
  return [...seen.values()].sort(
    (x, y) => x.dataset.localeCompare(y.dataset) || x.version - y.version || x.target.localeCompare(y.target),
  );
}

/** Chart rows: one per version, a column per model holding the mean score in percent. */
export function chartRows(points: HistoryPoint[]): { rows: Record<string, string | number | null>[]; targets: string[] } {
  const targets = [...new Set(points.map((p) => p.target))];
  const versions = [...new Set(points.map((p) => p.version))].sort((a, b) => a - b);
  const rows = versions.map((v) => {
    const row: Record<string, string | number | null> = { version: `v${v}` };
    for (const t of targets) {
      const point = points.find((p) => p.version === v && p.target === t);
      row[t] = point?.meanScore == null ? null : Math.round(point.meanScore * 1000) / 10;
    }
    return row;
  });
  return { rows, targets };
}

export function EvalHistory({ promptName }: { promptName: string }) {
  const [picked, setPicked] = useState<string | null>(null);
  const runs = useQuery({
    queryKey: ["evals", { prompt: promptName, status: "completed", limit: 200 }],
    queryFn: () => unwrap(api.GET("/api/v1/evals", { params: { query: { prompt: promptName, status: "completed", limit: 200 } } })),
  });
  if (runs.isLoading) return <Loader role="status" aria-label="Loading the evaluation history" />;
  if (runs.error) return <ErrorNotice error={runs.error} />;
  const all = historyPoints(promptName, runs.data?.items ?? []);
  if (all.length === 0)
    return (
      <Text>
        No completed evaluation of this prompt yet.{" "}
        <Anchor component={Link} to={`/evals?prompt=${encodeURIComponent(promptName)}&new=1`}>
          Start one
        </Anchor>
        .
      </Text>
    );
  const datasets = [...new Set(all.map((p) => p.dataset))];
  // default: the dataset of the newest completed evaluation
  const newest = runs.data!.items.find((r) => all.some((p) => p.runId === r.id));
  const dataset = picked ?? all.find((p) => p.runId === newest?.id)?.dataset ?? datasets[0];
  const points = all.filter((p) => p.dataset === dataset);
  const { rows, targets } = chartRows(points);
  const titleId = `eval-history-${promptName}`;
  return (
    <Stack>
      <Select label="Dataset" data={datasets} value={dataset} onChange={(v) => setPicked(v)} allowDeselect={false} w={320} />
      <figure style={{ margin: 0 }} aria-labelledby={titleId}>
        <Title order={2} size="h4" id={titleId}>
          Mean score per version on {dataset}
        </Title>
        <div aria-hidden="true">
          <LineChart
            h={260}
            data={rows}
            dataKey="version"
            series={targets.map((t, i) => ({ name: t, color: LINE_COLORS[i % LINE_COLORS.length] }))}
            yAxisProps={{ domain: [0, 100] }}
            valueFormatter={(v) => `${v}%`}
            connectNulls
            withLegend
            // the table below is the accessible form; the chart's own keyboard layer would be focusable
            // inside an aria-hidden wrapper
            lineChartProps={{ accessibilityLayer: false }}
          />
        </div>
        <VisuallyHidden>
          <figcaption>The table below lists the same scores.</figcaption>
        </VisuallyHidden>
      </figure>
      <Table aria-label="Evaluation history" striped>
        <TableHead columns={["Version", "Model", "Mean score", "Pass rate", "Evaluation", "Finished"]} />
        <Table.Tbody>
          {points.map((p) => (
            <Table.Tr key={`${p.version}-${p.target}`}>
              <Table.Td>v{p.version}</Table.Td>
              <Table.Td>{p.target}</Table.Td>
              <Table.Td>{percent(p.meanScore)}</Table.Td>
              <Table.Td>{percent(p.passRate)}</Table.Td>
              <Table.Td>
                <Anchor component={Link} to={`/evals/${p.runId}`}>
                  {p.runName}
                </Anchor>
              </Table.Td>
              <Table.Td>{p.finishedAt ? new Date(p.finishedAt).toLocaleString() : "—"}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}
