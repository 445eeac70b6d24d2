// Every recorded model call (playground, evaluations, SDKs, gateway): filters kept in the address, newest first
// with paging, and one run's full record on its own page (/runs/<id>).
import { Anchor, Badge, Code, Group, SimpleGrid, Stack, Table, Text, TextInput, Title, Select } from "@mantine/core";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Link, useParams } from "react-router";
import { api, unwrap, type Query, type Schemas } from "../api/client";
import { CHANGE_COLOR, OK_COLOR } from "../colors";
import { ErrorNotice } from "../components/ErrorNotice";
import { Pager, useCursorPages } from "../components/Paging";
import { useUrlFilters } from "../urlFilters";
import { TableHead } from "../components/TableHead";

type Run = Schemas["RunOut"];
const FILTERS = ["prompt", "versionId", "model", "provider", "status", "source", "from", "to", "minCostUsd", "maxCostUsd"] as const;

/** The versions of the prompt being filtered on, to narrow the runs to one of them. */
function VersionFilter({ prompt, value, onChange }: { prompt?: string; value?: string; onChange: (id: string | null) => void }) {
  const versions = useQuery({
    queryKey: ["prompt", prompt, "versions", "filter"],
    queryFn: () => unwrap(api.GET("/api/v1/prompts/{name}/versions", { params: { path: { name: prompt! }, query: { limit: 200 } } })),
    enabled: Boolean(prompt),
    retry: false,
  });
  const data = (versions.data?.items ?? []).map((v) => ({ value: v.id, label: `v${v.version}${v.commitMessage ? ` · ${v.commitMessage.slice(0, 40)}` : ""}` }));
  return (
    <Select
      label="Version"
      placeholder={prompt ? "Any version" : "Choose a prompt first"}
      disabled={!prompt || versions.isError}
      clearable
      data={data}
      value={value ?? null}
      onChange={onChange}
      w={200}
    />
  );
}

function StatusBadge({ status }: { status: string }) {
  return <Badge color={status === "ok" ? OK_COLOR : CHANGE_COLOR.removed}>{status}</Badge>;
}

function money(value: number) {
  return value === 0 ? "$0" : `$${value.toFixed(6)}`;
}

export function RunDetail() {
  const { runId = "" } = useParams();
  const run = useQuery({
    queryKey: ["run", runId],
    queryFn: () => unwrap(api.GET("/api/v1/runs/{run_id}", { params: { path: { run_id: runId } } })),
  });
  if (run.error) return <ErrorNotice error={run.error} />;
  if (!run.data) return null;
  const r: Run = run.data;
  return (
    <Stack>
      <Group>
        <Title order={1} size="h2">
          Run {r.id}
        </Title>
        <StatusBadge status={r.status} />
      </Group>
      <SimpleGrid cols={{ base: 2, md: 4 }}>
        <Text>Model: {r.provider}/{r.model}</Text>
        <Text>Source: {r.source}</Text>
        <Text>Tokens: {r.inputTokens} in / {r.outputTokens} out{r.usageEstimated ? " (estimated)" : ""}</Text>
        <Text>Cost: {money(r.costUsd)}</Text>
        <Text>Latency: {Math.round(r.latencyMs)} ms</Text>
        <Text>First token: {r.ttftMs == null ? "—" : `${Math.round(r.ttftMs)} ms`}</Text>
        <Text>When: {new Date(r.createdAt).toLocaleString()}</Text>
        <Text>Trace: {r.traceId ?? "—"}</Text>
      </SimpleGrid>
      {r.errorMessage && (
        <ErrorNotice error={new Error(`${r.errorClass ?? "error"}: ${r.errorMessage}`)} title="The call failed" />
      )}
      <Title order={2} size="h4">
        Input
      </Title>
      <Code block aria-label="Input">{JSON.stringify(r.input, null, 2)}</Code>
      <Title order={2} size="h4">
        Output
      </Title>
      <Code block aria-label="Output">{r.output ?? ""}</Code>
      <Title order={2} size="h4">
        Parameters
      </Title>
      <Code block aria-label="Parameters">{JSON.stringify(r.params, null, 2)}</Code>
    </Stack>
  );
}

export default function RunsPage() {
  const pages = useCursorPages();
  const { filters, setFilter, setFilters } = useUrlFilters(FILTERS, pages.reset);
  // The address holds whatever was typed; the server checks the values (a bad one is a 422 shown below).
  const query = { ...filters, cursor: pages.cursor, limit: 50 } as Query<"/api/v1/runs">;
  const runs = useQuery({
    queryKey: ["runs", query],
    queryFn: () => unwrap(api.GET("/api/v1/runs", { params: { query } })),
    placeholderData: keepPreviousData,
  });
  return (
    <Stack>
      <Title order={1} size="h2">
        Runs
      </Title>
      <Group align="end">
        <TextInput
          label="Prompt"
          placeholder="name or id"
          defaultValue={filters.prompt}
          onBlur={(e) => {
            const prompt = e.currentTarget.value;
            // another prompt: the version chosen for the previous one no longer applies
            setFilters(prompt === (filters.prompt ?? "") ? { prompt } : { prompt, versionId: null });
          }}
          w={180}
        />
        <VersionFilter prompt={filters.prompt} value={filters.versionId} onChange={(id) => setFilter("versionId", id)} />
        <TextInput label="Model" defaultValue={filters.model} onBlur={(e) => setFilter("model", e.currentTarget.value)} w={160} />
        <TextInput label="Provider" defaultValue={filters.provider} onBlur={(e) => setFilter("provider", e.currentTarget.value)} w={130} />
        <Select label="Status" clearable data={["ok", "error"]} value={filters.status ?? null} onChange={(v) => setFilter("status", v)} w={120} />
        <Select label="Source" clearable data={["playground", "eval", "gateway", "sdk", "experiment"]} value={filters.source ?? null} onChange={(v) => setFilter("source", v)} w={140} />
        <TextInput label="From" type="datetime-local" onBlur={(e) => setFilter("from", e.currentTarget.value)} />
        <TextInput label="To" type="datetime-local" onBlur={(e) => setFilter("to", e.currentTarget.value)} />
        <TextInput label="Min cost (USD)" inputMode="decimal" placeholder="0.001" defaultValue={filters.minCostUsd} onBlur={(e) => setFilter("minCostUsd", e.currentTarget.value.trim())} w={130} />
        <TextInput label="Max cost (USD)" inputMode="decimal" defaultValue={filters.maxCostUsd} onBlur={(e) => setFilter("maxCostUsd", e.currentTarget.value.trim())} w={130} />
      </Group>
      <ErrorNotice error={runs.error} />
      {runs.data && runs.data.items.length === 0 && <Text>No run matches these filters.</Text>}
      {runs.data && runs.data.items.length > 0 && (
        <Table aria-label="Runs" striped>
          <TableHead columns={["When", "Run", "Model", "Source", "Status", "Tokens", "Cost", "Latency"]} />
          <Table.Tbody>
            {runs.data.items.map((r) => (
              <Table.Tr key={r.id}>
                <Table.Td>{new Date(r.createdAt).toLocaleString()}</Table.Td>
                <Table.Td>
                  <Anchor component={Link} to={`/runs/${r.id}`}>
                    {r.id}
                  </Anchor>
                </Table.Td>
                <Table.Td>
                  {r.provider}/{r.model}
                </Table.Td>
                <Table.Td>{r.source}</Table.Td>
                <Table.Td>
                  <StatusBadge status={r.status} />
                </Table.Td>
                <Table.Td>
                  {r.inputTokens} / {r.outputTokens}
                </Table.Td>
                <Table.Td>{money(r.costUsd)}</Table.Td>
                <Table.Td>{Math.round(r.latencyMs)} ms</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Pager pages={pages} nextCursor={runs.data?.nextCursor} labels={["Newer", "Older"]} />
    </Stack>
  );
}
