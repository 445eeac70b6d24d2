// The "Optimize" tab: start an optimization (a background job) and the list of optimizations, filters in the URL.
import { Anchor, Button, Group, NumberInput, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate } from "react-router";
import { api, unwrap, type Query } from "../../api/client";
import { useCan } from "../../auth";
import { ErrorNotice } from "../../components/ErrorNotice";
import { Pager, useCursorPages } from "../../components/Paging";
import { TableHead } from "../../components/TableHead";
import { useUrlFilters } from "../../urlFilters";
import { ACTIVE_STATUSES, POLL_MS, modelTarget, promptNameOf, score } from "./model";
import { StatusBadge } from "./StatusBadge";

const FILTERS = ["status", "prompt"] as const;
const MIN_BUDGET = 10;

function StartForm({ prompt: initialPrompt }: { prompt: string }) {
  const [prompt, setPrompt] = useState(initialPrompt);
  const [dataset, setDataset] = useState("");
  const [budget, setBudget] = useState<number | string>(60);
  const [maxRounds, setMaxRounds] = useState<number | string>(3);
  const [perRound, setPerRound] = useState<number | string>(4);
  const [model, setModel] = useState("");
  const navigate = useNavigate();
  const client = useQueryClient();
  const start = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/v1/optimizations", {
          body: {
            prompt: prompt.trim(),
            dataset: dataset.trim(),
            budget: Number(budget),
            maxRounds: Number(maxRounds),
            candidatesPerRound: Number(perRound),
            model: modelTarget(model),
          },
        }),
      ),
    onSuccess: async (created) => {
      await client.invalidateQueries({ queryKey: ["optimizations"] });
      navigate(`/optimize/${created.id}`);
    },
  });
  return (
    <Stack component="form" onSubmit={(e) => { e.preventDefault(); start.mutate(); }} aria-labelledby="start-title">
      <Title order={2} size="h4" id="start-title">
        Start an optimization
      </Title>
      <Text size="sm" c="dimmed">
        Searches for a better version of a prompt on a dataset (half to train, half held out), spending at most the budget in model calls. The winner is saved as a new version; no label moves unless you promote it.
      </Text>
      <Group align="end">
        <TextInput label="Prompt" description="name, name@label or name@3" required value={prompt} onChange={(e) => setPrompt(e.currentTarget.value)} w={240} />
        <TextInput label="Dataset" description="name or name@version" required value={dataset} onChange={(e) => setDataset(e.currentTarget.value)} w={220} />
        <NumberInput label="Budget (model calls)" description={`at least ${MIN_BUDGET}`} min={MIN_BUDGET} max={5000} value={budget} onChange={setBudget} w={170} />
        <NumberInput label="Max rounds" description="1 to 100" min={1} max={100} value={maxRounds} onChange={setMaxRounds} w={120} />
        <NumberInput label="Candidates per round" description="1 to 20" min={1} max={20} value={perRound} onChange={setPerRound} w={170} />
        <TextInput label="Model" description="provider/model; empty: the prompt's own" value={model} onChange={(e) => setModel(e.currentTarget.value)} w={240} />
      </Group>
      <ErrorNotice error={start.error} />
      <Group>
        <Button type="submit" loading={start.isPending} disabled={!prompt.trim() || !dataset.trim()}>
          Start optimization
        </Button>
      </Group>
    </Stack>
  );
}

function OptimizationList() {
  const pages = useCursorPages();
  const { filters, setFilter } = useUrlFilters(FILTERS, pages.reset);
  const query = { ...filters, cursor: pages.cursor, limit: 25 } as Query<"/api/v1/optimizations">;
  const list = useQuery({
    queryKey: ["optimizations", query],
    queryFn: () => unwrap(api.GET("/api/v1/optimizations", { params: { query } })),
    placeholderData: keepPreviousData,
    refetchInterval: (q) => (q.state.data?.items.some((o) => ACTIVE_STATUSES.has(o.status)) ? POLL_MS * 2 : false),
  });
  return (
    <Stack>
      <Title order={2} size="h4">
        Optimizations
      </Title>
      <Group align="end">
        <TextInput label="Filter by prompt" placeholder="name or id" defaultValue={filters.prompt} onBlur={(e) => setFilter("prompt", e.currentTarget.value.trim())} w={220} />
        <Select label="Status" clearable data={["queued", "running", "completed", "failed", "cancelled"]} value={filters.status ?? null} onChange={(v) => setFilter("status", v)} w={160} />
      </Group>
      <ErrorNotice error={list.error} />
      {list.data && list.data.items.length === 0 && <Text>No optimization matches. Start one above.</Text>}
      {list.data && list.data.items.length > 0 && (
        <Table aria-label="Optimizations" striped>
          <TableHead columns={["Started", "Optimization", "Prompt", "Status", "Calls", "Best train score"]} />
          <Table.Tbody>
            {list.data.items.map((o) => (
              <Table.Tr key={o.id}>
                <Table.Td>{new Date(o.createdAt).toLocaleString()}</Table.Td>
                <Table.Td>
                  <Anchor component={Link} to={`/optimize/${o.id}`}>
                    {o.id}
                  </Anchor>
                </Table.Td>
                <Table.Td>{promptNameOf(o)}</Table.Td>
                <Table.Td>
                  <StatusBadge status={o.status} />
                </Table.Td>
                <Table.Td>
                  {o.callsUsed} / {o.budget}
                </Table.Td>
                <Table.Td>{score(o.bestTrainScore)}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Pager pages={pages} nextCursor={list.data?.nextCursor} labels={["Newer", "Older"]} />
    </Stack>
  );
}

export function OptimizeTab({ prompt }: { prompt: string }) {
  const canOptimize = useCan("prompt:optimize");
  return (
    <Stack gap="xl">
      {canOptimize ? <StartForm prompt={prompt} /> : <Text c="dimmed">Your role can follow optimizations but not start them (prompt:optimize).</Text>}
      <OptimizationList />
    </Stack>
  );
}
