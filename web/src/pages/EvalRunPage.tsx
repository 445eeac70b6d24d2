// One evaluation (/evals/<id>): live progress while it works (polled), cancel, the aggregates per version ×
// model, the results grid with filters in the address, a per-case drill-down (?case=<key>) and a CSV export.
import { Anchor, Button, Group, Loader, Progress, Select, Stack, Table, Text, Title } from "@mantine/core";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { api, unwrap, type Query } from "../api/client";
import { useCan } from "../auth";
import { ErrorNotice } from "../components/ErrorNotice";
import { Pager, useCursorPages } from "../components/Paging";
import { TableHead } from "../components/TableHead";
import { promptUrl } from "../paths";
import { CaseDrillDown } from "./evals/CaseDrillDown";
import {
  EvalStatusBadge,
  GatedButton,
  PassBadge,
  TERMINAL,
  download,
  fetchAllResults,
  fetchCases,
  groupsOf,
  percent,
  resultsCsv,
  scoresOf,
  scorerName,
  useEvalRun,
  type EvalRun,
} from "./evals/shared";

const OUTCOMES = [
  { value: "passed", label: "Passed" },
  { value: "failed", label: "Failed" },
  { value: "errors", label: "Errors" },
];

const cells = (n: number) => `${n} ${n === 1 ? "cell" : "cells"}`;

export function ProgressPanel({ run }: { run: EvalRun }) {
  const done = run.doneCells;
  const total = run.totalCells || 1;
  const ok = done - run.errorCells;
  const failedScoring = groupsOf(run).reduce((sum, g) => sum + (g.failed - g.errors), 0);
  return (
    <Stack gap={4}>
      <Progress.Root size="xl" aria-label="Evaluation progress">
        <Progress.Section value={(ok / total) * 100} color="blue.9" aria-label={`${cells(ok)} done`} />
        <Progress.Section value={(run.errorCells / total) * 100} color="red.9" aria-label={`${cells(run.errorCells)} failed with an error`} />
      </Progress.Root>
      <Text data-testid="progress-text" aria-live="polite">
        {done} of {run.totalCells} done ({Math.round(run.progress * 100)}%) · {run.errorCells} failed with an error · {failedScoring} did not pass
        {TERMINAL.has(run.status) ? "" : " · updating…"}
      </Text>
    </Stack>
  );
}

function Summary({ run }: { run: EvalRun }) {
  const groups = groupsOf(run);
  const scorerNames = [...new Set(groups.flatMap((g) => Object.keys(g.scorers ?? {})))];
  return (
    <Table aria-label="Summary by version and model" striped>
      <TableHead columns={["Version", "Model", "Done", "Passed", "Failed", "Errors", "Pass rate", "Mean score", ...scorerNames, "Latency p50 / p95", "Cost"]} />
      <Table.Tbody>
        {groups.map((g) => (
          <Table.Tr key={`${g.versionId}-${g.targetIndex}`}>
            <Table.Td>
              <Anchor component={Link} to={promptUrl(g.promptName)}>
                {g.label}
              </Anchor>
            </Table.Td>
            <Table.Td>{g.target}</Table.Td>
            <Table.Td>
              {g.completed} / {g.cases}
            </Table.Td>
            <Table.Td>{g.passed}</Table.Td>
            <Table.Td>{g.failed}</Table.Td>
            <Table.Td>{g.errors}</Table.Td>
            <Table.Td>{percent(g.passRate)}</Table.Td>
            <Table.Td>{percent(g.meanScore)}</Table.Td>
            {scorerNames.map((s) => (
              <Table.Td key={s}>{percent(g.scorers?.[s])}</Table.Td>
            ))}
            <Table.Td>{g.latencyP50Ms == null ? "—" : `${Math.round(g.latencyP50Ms)} / ${Math.round(g.latencyP95Ms ?? 0)} ms`}</Table.Td>
            <Table.Td>${g.costUsd.toFixed(6)}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

function ResultsGrid({ run, onOpen }: { run: EvalRun; onOpen: (caseKey: string) => void }) {
  const pages = useCursorPages();
  const [params, setParams] = useSearchParams();
  const version = params.get("version");
  const outcome = params.get("outcome");
  function setParam(key: string, value: string | null) {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
    pages.reset();
  }
  const query: Query<"/api/v1/evals/{run_id}/results"> = {
    versionId: version ?? undefined,
    passed: outcome === "passed" ? true : outcome === "failed" ? false : undefined,
    errors: outcome === "errors",
    cursor: pages.cursor,
    limit: 50,
  };
  const results = useQuery({
    queryKey: ["eval", run.id, "results", query],
    queryFn: () => unwrap(api.GET("/api/v1/evals/{run_id}/results", { params: { path: { run_id: run.id }, query } })),
    placeholderData: keepPreviousData,
    refetchInterval: TERMINAL.has(run.status) ? false : 2000,
  });
  const groups = groupsOf(run);
  const labels = new Map(groups.map((g) => [g.versionId, g.label]));
  const items = results.data?.items ?? [];
  const scorerNames = [...new Set(items.flatMap((r) => scoresOf(r).map(scorerName)))];
  return (
    <Stack>
      <Group align="end">
        <Select
          label="Version"
          clearable
          data={[...new Map(groups.map((g) => [g.versionId, g.label])).entries()].map(([value, label]) => ({ value, label }))}
          value={version}
          onChange={(v) => setParam("version", v)}
          w={260}
        />
        <Select label="Outcome" clearable data={OUTCOMES} value={outcome} onChange={(v) => setParam("outcome", v)} w={160} />
      </Group>
      <ErrorNotice error={results.error} />
      {results.data && items.length === 0 && <Text>{TERMINAL.has(run.status) ? "No result matches these filters." : "No results yet."}</Text>}
      {items.length > 0 && (
        <Table aria-label="Results" striped highlightOnHover>
          <TableHead columns={["Case", "Version", "Model", "Outcome", "Score", ...scorerNames, "Output", ""]} />
          <Table.Tbody>
            {items.map((r) => {
              const byName = new Map(scoresOf(r).map((s) => [scorerName(s), s]));
              return (
                <Table.Tr key={r.id}>
                  <Table.Td>{r.caseKey}</Table.Td>
                  <Table.Td>{labels.get(r.versionId) ?? r.versionId}</Table.Td>
                  <Table.Td>{r.target}</Table.Td>
                  <Table.Td>
                    <PassBadge passed={r.passed} error={r.errorClass} />
                  </Table.Td>
                  <Table.Td>{r.score.toFixed(2)}</Table.Td>
                  {scorerNames.map((s) => (
                    <Table.Td key={s} title={byName.get(s)?.reason}>
                      {byName.has(s) ? (byName.get(s)!.score ?? 0).toFixed(2) : "—"}
                    </Table.Td>
                  ))}
                  <Table.Td maw={320} style={{ overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" }}>
                    {r.output ?? r.errorMessage ?? ""}
                  </Table.Td>
                  <Table.Td>
                    <Button size="xs" variant="default" onClick={() => onOpen(r.caseKey)} aria-label={`Details of case ${r.caseKey} (${labels.get(r.versionId) ?? r.versionId} on ${r.target})`}>
                      Details
                    </Button>
                  </Table.Td>
                </Table.Tr>
              );
            })}
          </Table.Tbody>
        </Table>
      )}
      <Pager pages={pages} nextCursor={results.data?.nextCursor} />
    </Stack>
  );
}

export default function EvalRunPage() {
  const { runId = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const canRun = useCan("eval:run");
  const client = useQueryClient();
  const run = useEvalRun(runId);
  const [exporting, setExporting] = useState(false);
  const [exportError, setExportError] = useState<unknown>(null);
  const cancel = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/evals/{run_id}/cancel", { params: { path: { run_id: runId } } })),
    onSuccess: (updated) => client.setQueryData(["eval", runId], updated),
  });
  function openCase(caseKey: string | null) {
    const next = new URLSearchParams(params);
    if (caseKey) next.set("case", caseKey);
    else next.delete("case");
    setParams(next);
  }
  async function exportCsv(r: EvalRun) {
    setExporting(true);
    setExportError(null);
    try {
      const [results, cases] = await Promise.all([fetchAllResults(r.id), fetchCases(r)]);
      download(`${r.id}.csv`, resultsCsv(r, results, cases));
    } catch (error) {
      setExportError(error);
    } finally {
      setExporting(false);
    }
  }
  if (run.isLoading) return <Loader role="status" aria-label="Loading the evaluation" />;
  if (run.error || !run.data) return <ErrorNotice error={run.error} />;
  const r = run.data;
  const pin = r.dataset as { name?: string; version?: number };
  const finished = TERMINAL.has(r.status);
  const versions = r.versions as { label: string }[];
  return (
    <Stack>
      <Group justify="space-between">
        <Group>
          <Title order={1} size="h2">
            {r.name}
          </Title>
          <EvalStatusBadge status={r.status} />
        </Group>
        <Group>
          {versions.length > 1 && (
            <Button component={Link} to={`/evals/compare?run=${r.id}`} variant="default">
              Compare versions
            </Button>
          )}
          <Button variant="default" onClick={() => void exportCsv(r)} loading={exporting} disabled={r.doneCells === 0}>
            Export CSV
          </Button>
          {!finished && (
            <GatedButton
              allowed={canRun}
              reason="Your role cannot cancel evaluations (needs eval:run)"
              color="red.9"
              onClick={() => cancel.mutate()}
              loading={cancel.isPending}
              disabled={r.cancelRequested}
            >
              {r.cancelRequested ? "Cancelling…" : "Cancel"}
            </GatedButton>
          )}
        </Group>
      </Group>
      <Text size="sm">
        {r.id} · dataset {pin.name ? `${pin.name}@${pin.version}` : "—"} · scorers{" "}
        {(r.scorers as { type: string; name?: string }[]).map((s) => s.name ?? s.type).join(", ") || "from each case"} · pass threshold {r.passThreshold} · started{" "}
        {r.startedAt ? new Date(r.startedAt).toLocaleString() : "not yet"}
        {r.finishedAt ? ` · finished ${new Date(r.finishedAt).toLocaleString()}` : ""}
      </Text>
      <ProgressPanel run={r} />
      <ErrorNotice error={cancel.error} title="Not cancelled" />
      <ErrorNotice error={exportError} title="The export failed" />
      {r.error && <ErrorNotice error={new Error(r.error)} title="The evaluation failed" />}
      <Title order={2} size="h3">
        Summary
      </Title>
      <Summary run={r} />
      <Title order={2} size="h3">
        Results
      </Title>
      <ResultsGrid run={r} onOpen={openCase} />
      <CaseDrillDown run={r} caseKey={params.get("case")} onClose={() => openCase(null)} />
    </Stack>
  );
}
