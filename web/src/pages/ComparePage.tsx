// Compare two versions (/evals/compare?run=<A>&against=<B>&a=<version>&b=<version>): the two sides are kept in
// the address, the server pairs the cases both ran and answers with the verdict, its tests and the interval;
// this page says it in words and lists the cases that changed outcome.
import { Anchor, Badge, Code, Loader, Paper, Select, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";
import { api, unwrap } from "../api/client";
import { CHANGE_COLOR, OK_COLOR } from "../colors";
import { ErrorNotice } from "../components/ErrorNotice";
import { TableHead } from "../components/TableHead";
import { formatP, intervalText, methodText, percent, useEvalRun, verdictHeadline, type Comparison } from "./evals/shared";

type Side = { evalRunId: string; label: string };

function SidePicker({ side, runKey, versionKey }: { side: "A" | "B"; runKey: string; versionKey: string }) {
  const [params, setParams] = useSearchParams();
  const runs = useQuery({
    queryKey: ["evals", { status: "completed", limit: 100 }],
    queryFn: () => unwrap(api.GET("/api/v1/evals", { params: { query: { status: "completed", limit: 100 } } })),
  });
  const runId = params.get(runKey) ?? (side === "B" ? params.get("run") : null) ?? "";
  const run = useEvalRun(runId);
  function set(key: string, value: string | null) {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    if (key === runKey) next.delete(versionKey);
    setParams(next, { replace: true });
  }
  const options = (runs.data?.items ?? []).map((r) => ({ value: r.id, label: `${r.name} (${r.id})` }));
  if (runId && !options.some((o) => o.value === runId)) options.unshift({ value: runId, label: run.data ? `${run.data.name} (${runId})` : runId });
  const versions = ((run.data?.versions ?? []) as { versionId: string; label: string }[]).map((v) => ({ value: v.versionId, label: v.label }));
  return (
    <Stack gap="xs">
      <Select
        label={`Evaluation ${side}`}
        searchable
        clearable={side === "B"}
        placeholder={side === "B" ? "same as A" : undefined}
        data={options}
        value={params.get(runKey)}
        onChange={(v) => set(runKey, v)}
      />
      <Select
        label={`Version ${side}`}
        placeholder={side === "A" ? "its first version" : params.get("against") ? "its first version" : "A's second version"}
        clearable
        data={versions}
        value={params.get(versionKey)}
        onChange={(v) => set(versionKey, v)}
      />
    </Stack>
  );
}

function Verdict({ c }: { c: Comparison }) {
  const a = c.a as Side;
  const b = c.b as Side;
  const mcnemar = c.mcnemar as { aOnly: number; bOnly: number; both: number; neither: number; pValue: number };
  return (
    <Stack>
      <Paper withBorder p="md" data-testid="verdict">
        <Badge color={c.significant ? OK_COLOR : "gray.7"} mb="xs">
          {c.significant ? "Significant difference" : "No significant difference"}
        </Badge>
        <Text fw={700} size="lg">
          {verdictHeadline(c)}
        </Text>
        <Text data-testid="server-verdict">{c.verdict}</Text>
        <Text size="sm" mt="xs" data-testid="method">
          Method: {methodText(c)}
        </Text>
      </Paper>
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <Table aria-label="Both sides">
          <TableHead columns={["", "A", "B"]} />
          <Table.Tbody>
            <Table.Tr>
              <Table.Th scope="row">Version</Table.Th>
              <Table.Td>
                <Anchor component={Link} to={`/evals/${a.evalRunId}`}>
                  {a.label}
                </Anchor>
              </Table.Td>
              <Table.Td>
                <Anchor component={Link} to={`/evals/${b.evalRunId}`}>
                  {b.label}
                </Anchor>
              </Table.Td>
            </Table.Tr>
            <Table.Tr>
              <Table.Th scope="row">Pass rate</Table.Th>
              <Table.Td>{percent(c.aPassRate)}</Table.Td>
              <Table.Td>{percent(c.bPassRate)}</Table.Td>
            </Table.Tr>
            <Table.Tr>
              <Table.Th scope="row">Mean score</Table.Th>
              <Table.Td>{percent(c.aMeanScore)}</Table.Td>
              <Table.Td>{percent(c.bMeanScore)}</Table.Td>
            </Table.Tr>
            <Table.Tr>
              <Table.Th scope="row">Score difference (B − A)</Table.Th>
              <Table.Td colSpan={2} data-testid="interval">
                {intervalText(c)}
              </Table.Td>
            </Table.Tr>
          </Table.Tbody>
        </Table>
        <Table aria-label={`Paired outcomes on ${c.cases} cases`}>
          <TableHead columns={["", "B passed", "B failed"]} />
          <Table.Tbody>
            <Table.Tr>
              <Table.Th scope="row">A passed</Table.Th>
              <Table.Td>{mcnemar.both}</Table.Td>
              <Table.Td>{mcnemar.aOnly}</Table.Td>
            </Table.Tr>
            <Table.Tr>
              <Table.Th scope="row">A failed</Table.Th>
              <Table.Td>{mcnemar.bOnly}</Table.Td>
              <Table.Td>{mcnemar.neither}</Table.Td>
            </Table.Tr>
            <Table.Tr>
              <Table.Td colSpan={3}>
                <Text size="sm">
                  {c.cases} paired cases; McNemar p = {formatP(mcnemar.pValue)}
                </Text>
              </Table.Td>
            </Table.Tr>
          </Table.Tbody>
        </Table>
      </SimpleGrid>
      <Title order={2} size="h3">
        Cases that changed outcome
      </Title>
      {c.flipped.length === 0 ? (
        <Text>No case passed under one version and failed under the other.</Text>
      ) : (
        <Table aria-label="Cases that changed outcome" striped>
          <TableHead columns={["Case", "Change", "A score", "B score", "A output", "B output"]} />
          <Table.Tbody>
            {(c.flipped as { caseKey: string; direction: string; aScore: number; bScore: number; aOutput: string | null; bOutput: string | null }[]).map((f) => (
              <Table.Tr key={f.caseKey}>
                <Table.Td>
                  <Anchor component={Link} to={`/evals/${b.evalRunId}?case=${encodeURIComponent(f.caseKey)}`}>
                    {f.caseKey}
                  </Anchor>
                </Table.Td>
                <Table.Td>
                  <Badge color={f.direction === "fixed" ? OK_COLOR : CHANGE_COLOR.removed}>{f.direction === "fixed" ? "fixed in B" : "broken in B"}</Badge>
                </Table.Td>
                <Table.Td>{f.aScore.toFixed(2)}</Table.Td>
                <Table.Td>{f.bScore.toFixed(2)}</Table.Td>
                <Table.Td>
                  <Code>{f.aOutput ?? ""}</Code>
                </Table.Td>
                <Table.Td>
                  <Code>{f.bOutput ?? ""}</Code>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Stack>
  );
}

export default function ComparePage() {
  const [params] = useSearchParams();
  const run = params.get("run");
  const query = {
    run: run ?? "",
    against: params.get("against") ?? undefined,
    a: params.get("a") ?? undefined,
    b: params.get("b") ?? undefined,
  };
  const comparison = useQuery({
    queryKey: ["evals", "compare", query],
    queryFn: () => unwrap(api.GET("/api/v1/evals/compare", { params: { query } })),
    enabled: Boolean(run),
  });
  return (
    <Stack>
      <Title order={1} size="h2">
        Compare evaluations
      </Title>
      <Text size="sm">Pick two evaluations (or two versions of one). Cases are paired by their dataset key.</Text>
      <SimpleGrid cols={2}>
        <SidePicker side="A" runKey="run" versionKey="a" />
        <SidePicker side="B" runKey="against" versionKey="b" />
      </SimpleGrid>
      {!run && <Text>Choose evaluation A to compare.</Text>}
      {comparison.isFetching && !comparison.data && <Loader role="status" aria-label="Comparing" />}
      <ErrorNotice error={comparison.error} title="No comparison" />
      {comparison.data && <Verdict c={comparison.data} />}
    </Stack>
  );
}
