// One model's answer in the playground: the text as it streams in, then tokens, cost and latency, the error in
// words when the call failed, and what to do with the run (open it, save it as a dataset case).
import { Anchor, Badge, Box, Card, Group, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { Link } from "react-router";
import { ApiError, type Problem } from "../../api/client";
import { CHANGE_COLOR, OK_COLOR } from "../../colors";
import { ErrorNotice } from "../../components/ErrorNotice";
import type { ColumnOutput } from "./model";
import { SaveCase } from "./SaveCase";

const STATE_BADGE: Record<string, { label: string; color: string }> = {
  waiting: { label: "waiting", color: "gray.7" },
  streaming: { label: "streaming", color: "blue.8" },
  stopped: { label: "stopped", color: CHANGE_COLOR.changed },
  ok: { label: "ok", color: OK_COLOR },
  error: { label: "error", color: CHANGE_COLOR.removed },
};

export function formatCost(usd: number): string {
  if (usd === 0) return "$0";
  return usd < 0.01 ? `$${usd.toPrecision(3)}` : `$${usd.toFixed(4)}`;
}

function Stat({ label, value }: { label: string; value: string }) {
  return (
    <Text size="sm">
      <Text span fw={600} size="sm">
        {label}:
      </Text>{" "}
      {value}
    </Text>
  );
}

export function ResultColumn({ index, model, settings, output }: { index: number; model: string; settings: string; output: ColumnOutput }) {
  const result = output.result;
  const badge = STATE_BADGE[result ? result.status : output.state];
  const usage = result?.usage;
  const problem = result?.error as Partial<Problem> | null | undefined;
  const column = index + 1;
  return (
    <Card withBorder padding="sm" aria-label={`Column ${column}`} component="section">
      <Stack gap="xs">
        <Group justify="space-between" wrap="nowrap" align="start">
          <Stack gap={0}>
            <Title order={2} size="h5">
              {column}. {model}
            </Title>
            {settings && (
              <Text size="xs">
                {settings}
              </Text>
            )}
          </Stack>
          <Badge color={badge.color}>{badge.label}</Badge>
        </Group>
        <Box
          data-testid={`output-${column}`}
          aria-label={`Output of column ${column}`}
          aria-busy={output.state === "waiting" || output.state === "streaming"}
          role="log"
          p="xs"
          mih={80}
          style={{ whiteSpace: "pre-wrap", fontFamily: "var(--mantine-font-family-monospace)", fontSize: 14, border: "1px solid var(--mantine-color-default-border)", borderRadius: 4 }}
        >
          {output.text || (output.state === "waiting" ? "Waiting for the first token…" : output.state === "done" ? "(empty answer)" : "")}
        </Box>
        {result && (
          <SimpleGrid cols={2} spacing={4} verticalSpacing={2}>
            <Stat label="Tokens" value={usage ? `${usage.inputTokens} in / ${usage.outputTokens} out${usage.estimated ? " (estimated)" : ""}` : "—"} />
            <Stat label="Cost" value={formatCost(result.costUsd)} />
            <Stat label="Latency" value={`${Math.round(result.latencyMs)} ms`} />
            <Stat label="First token" value={result.ttftMs == null ? "—" : `${Math.round(result.ttftMs)} ms`} />
            <Stat label="Finish" value={result.finishReason ?? "—"} />
            {result.cached && <Stat label="Cache" value="answered from the response cache" />}
            {result.fallbackFrom && <Stat label="Fallback from" value={result.fallbackFrom} />}
          </SimpleGrid>
        )}
        {result?.notice && (
          <Text size="sm" fs="italic">
            {result.notice}
          </Text>
        )}
        {problem && (
          <ErrorNotice error={new ApiError(problem.status ?? 502, problem, problem.requestId ?? null)} title={`Column ${column}: the call failed`} />
        )}
        {output.state === "stopped" && !result && <Text size="sm">Stopped before the model finished.</Text>}
        {result && (
          <Group gap="sm">
            <Anchor component={Link} to={`/runs/${result.runId}`} size="sm">
              Open run
            </Anchor>
            {result.status === "ok" && <SaveCase runId={result.runId} column={column} />}
          </Group>
        )}
      </Stack>
    </Card>
  );
}
