// Evaluations: every run, newest first, filtered by prompt, dataset and status (kept in the address, so
// /evals?prompt=sentiment/few-shot is a link); pick two to compare; start a new one in a dialog.
import { Anchor, Button, Checkbox, Group, Modal, Progress, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, unwrap, type Query } from "../api/client";
import { useCan } from "../auth";
import { ErrorNotice } from "../components/ErrorNotice";
import { Pager, useCursorPages } from "../components/Paging";
import { TableHead } from "../components/TableHead";
import { useUrlFilters } from "../urlFilters";
import { NewEvalForm } from "./evals/NewEvalForm";
import { EvalStatusBadge, GatedButton, STATUSES, TERMINAL, groupsOf, percent, type EvalRun } from "./evals/shared";

const FILTERS = ["prompt", "dataset", "status"] as const;

function Results({ run }: { run: EvalRun }) {
  const groups = groupsOf(run);
  if (!TERMINAL.has(run.status))
    return (
      <Progress
        value={run.progress * 100}
        aria-label={`${run.name}: ${run.doneCells} of ${run.totalCells} done`}
        w={140}
      />
    );
  return (
    <Stack gap={0}>
      {groups.map((g) => (
        <Text size="sm" key={`${g.versionId}-${g.targetIndex}`}>
          {g.label}
          {groups.length > 1 && g.target ? ` on ${g.target}` : ""}: {percent(g.passRate)} pass, mean {percent(g.meanScore)}
        </Text>
      ))}
    </Stack>
  );
}

export default function EvalsPage() {
  const canRun = useCan("eval:run");
  const pages = useCursorPages();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const { filters, setFilter } = useUrlFilters(FILTERS, pages.reset);
  const [picked, setPicked] = useState<string[]>([]);
  const creating = params.get("new") === "1";
  const query = { ...filters, cursor: pages.cursor, limit: 50 } as Query<"/api/v1/evals">;
  const runs = useQuery({
    queryKey: ["evals", query],
    queryFn: () => unwrap(api.GET("/api/v1/evals", { params: { query } })),
    placeholderData: keepPreviousData,
    // a run in the list that is still working keeps the list fresh
    refetchInterval: (q) => (q.state.data?.items.some((r) => !TERMINAL.has(r.status)) ? 2000 : false),
  });
  function setCreating(open: boolean) {
    const next = new URLSearchParams(params);
    if (open) next.set("new", "1");
    else next.delete("new");
    setParams(next, { replace: true });
  }
  const toggle = (id: string) => setPicked(picked.includes(id) ? picked.filter((p) => p !== id) : [...picked, id].slice(-2));
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={1} size="h2">
          Evaluations
        </Title>
        <GatedButton allowed={canRun} reason="Your role cannot start evaluations (needs eval:run)" onClick={() => setCreating(true)}>
          New evaluation
        </GatedButton>
      </Group>
      <Group align="end">
        <TextInput label="Prompt" placeholder="name or id" defaultValue={filters.prompt} onBlur={(e) => setFilter("prompt", e.currentTarget.value)} w={220} />
        <TextInput label="Dataset" placeholder="name or id" defaultValue={filters.dataset} onBlur={(e) => setFilter("dataset", e.currentTarget.value)} w={200} />
        <Select label="Status" clearable data={[...STATUSES]} value={filters.status ?? null} onChange={(v) => setFilter("status", v)} w={150} />
        <Button
          variant="default"
          disabled={picked.length !== 2}
          onClick={() => navigate(`/evals/compare?run=${encodeURIComponent(picked[0])}&against=${encodeURIComponent(picked[1])}`)}
        >
          Compare selected ({picked.length}/2)
        </Button>
      </Group>
      <ErrorNotice error={runs.error} />
      {runs.data && runs.data.items.length === 0 && (
        <Text>{Object.keys(filters).length ? "No evaluation matches these filters." : "No evaluations yet. Start one with “New evaluation”."}</Text>
      )}
      {runs.data && runs.data.items.length > 0 && (
        <Table aria-label="Evaluations" striped>
          <TableHead columns={["Compare", "Evaluation", "Status", "Dataset", "Results", "Created"]} />
          <Table.Tbody>
            {runs.data.items.map((run) => {
              const pin = run.dataset as { name?: string; version?: number };
              return (
                <Table.Tr key={run.id}>
                  <Table.Td>
                    <Checkbox aria-label={`Select ${run.name} (${run.id}) for comparison`} checked={picked.includes(run.id)} onChange={() => toggle(run.id)} />
                  </Table.Td>
                  <Table.Td>
                    <Anchor component={Link} to={`/evals/${run.id}`}>
                      {run.name}
                    </Anchor>
                    <Text size="xs">
                      {run.id}
                    </Text>
                  </Table.Td>
                  <Table.Td>
                    <EvalStatusBadge status={run.status} />
                  </Table.Td>
                  <Table.Td>{pin.name ? `${pin.name}@${pin.version}` : "—"}</Table.Td>
                  <Table.Td>
                    <Results run={run} />
                  </Table.Td>
                  <Table.Td>{new Date(run.createdAt).toLocaleString()}</Table.Td>
                </Table.Tr>
              );
            })}
          </Table.Tbody>
        </Table>
      )}
      <Pager pages={pages} nextCursor={runs.data?.nextCursor} labels={["Newer", "Older"]} />
      <Modal opened={creating && canRun} onClose={() => setCreating(false)} title="New evaluation" size="xl">
        <NewEvalForm initialPrompt={filters.prompt} />
      </Modal>
    </Stack>
  );
}
