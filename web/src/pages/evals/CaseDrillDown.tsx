// One case of an evaluation in a dialog: its input and expected output from the dataset, then for each
// version × model that ran it the output, the error if any and every scorer's score with its reason.
import { Anchor, Code, Divider, Group, Loader, Modal, Stack, Table, Text, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router";
import { api, unwrap } from "../../api/client";
import { ErrorNotice } from "../../components/ErrorNotice";
import { TableHead } from "../../components/TableHead";
import { PassBadge, groupsOf, scoresOf, scorerName, show, useRunCases, type EvalRun } from "./shared";

export function CaseDrillDown({ run, caseKey, onClose }: { run: EvalRun; caseKey: string | null; onClose: () => void }) {
  const results = useQuery({
    queryKey: ["eval", run.id, "case", caseKey],
    queryFn: () =>
      unwrap(api.GET("/api/v1/evals/{run_id}/results", { params: { path: { run_id: run.id }, query: { caseKey: caseKey!, limit: 100 } } })),
    enabled: caseKey !== null,
  });
  const cases = useRunCases(run, caseKey !== null);
  const item = caseKey ? cases.data?.get(caseKey) : undefined;
  const labels = new Map(groupsOf(run).map((g) => [g.versionId, g.label]));
  return (
    <Modal opened={caseKey !== null} onClose={onClose} title={`Case ${caseKey ?? ""}`} size="xl">
      <Stack>
        <ErrorNotice error={results.error ?? cases.error} />
        {(results.isLoading || cases.isLoading) && <Loader role="status" aria-label="Loading the case" />}
        <Title order={2} size="h4">
          Input
        </Title>
        <Code block aria-label="Case input">
          {item ? JSON.stringify(item.input, null, 2) : cases.isLoading ? "" : "(the case is not in the dataset version any more)"}
        </Code>
        <Title order={2} size="h4">
          Expected
        </Title>
        <Code block aria-label="Expected output">
          {item?.expected == null ? "(none)" : show(item.expected)}
        </Code>
        {results.data?.items.map((r) => (
          <Stack key={r.id} gap="xs">
            <Divider />
            <Group>
              <Title order={2} size="h4">
                {labels.get(r.versionId) ?? r.versionId} on {r.target}
              </Title>
              <PassBadge passed={r.passed} error={r.errorClass} />
              <Text size="sm">score {r.score.toFixed(3)}</Text>
              {r.runId && (
                <Anchor component={Link} to={`/runs/${r.runId}`} size="sm">
                  model call {r.runId}
                </Anchor>
              )}
            </Group>
            <Code block aria-label={`Output of ${labels.get(r.versionId) ?? r.versionId} on ${r.target}`}>
              {r.output ?? "(no output)"}
            </Code>
            {r.errorMessage && <ErrorNotice error={new Error(`${r.errorClass ?? "error"}: ${r.errorMessage}`)} title="The call failed" />}
            {scoresOf(r).length > 0 && (
              <Table aria-label={`Scores of ${labels.get(r.versionId) ?? r.versionId} on ${r.target}`}>
                <TableHead columns={["Scorer", "Type", "Score", "Result", "Weight", "Reason"]} />
                <Table.Tbody>
                  {scoresOf(r).map((s, index) => (
                    <Table.Tr key={index}>
                      <Table.Td>{scorerName(s)}</Table.Td>
                      <Table.Td>{s.type}</Table.Td>
                      <Table.Td>{(s.score ?? 0).toFixed(3)}</Table.Td>
                      <Table.Td>
                        <PassBadge passed={Boolean(s.passed)} />
                      </Table.Td>
                      <Table.Td>{s.weight ?? 1}</Table.Td>
                      <Table.Td>{s.reason}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )}
            <Text size="xs">
              {Math.round(r.latencyMs)} ms · {r.inputTokens} / {r.outputTokens} tokens{r.cached ? " · from cache" : ""}
            </Text>
          </Stack>
        ))}
      </Stack>
    </Modal>
  );
}
