// What people said about a prompt, per version: how many ratings, the mean score, the 1–5 distribution, thumbs
// and rubric means, and the most recent comments. Mounted as the "Feedback" tab of the prompt page.
import { Anchor, Badge, Blockquote, Group, Loader, Progress, Stack, Table, Text, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { ErrorNotice } from "./ErrorNotice";
import { TableHead } from "./TableHead";

type Aggregate = Schemas["FeedbackAggregate"];
const RECENT = 50;
const SHOWN_COMMENTS = 10;
const SCORES = ["1", "2", "3", "4", "5"];

export function formatMean(mean: number | null | undefined): string {
  return mean == null ? "—" : mean.toFixed(2);
}

/** The histogram as words, for screen readers and the table cell: "1: 0, 2: 1, …". */
export function distributionText(histogram: Record<string, number>): string {
  return SCORES.map((s) => `${s}: ${histogram[s] ?? 0}`).join(", ");
}

function Distribution({ aggregate }: { aggregate: Aggregate }) {
  const most = Math.max(1, ...SCORES.map((s) => aggregate.scoreHistogram[s] ?? 0));
  return (
    <Stack gap={2} aria-label={`Score distribution ${distributionText(aggregate.scoreHistogram)}`} role="group" miw={160}>
      {SCORES.map((s) => {
        const n = aggregate.scoreHistogram[s] ?? 0;
        return (
          <Group key={s} gap={6} wrap="nowrap" aria-hidden>
            <Text size="xs" w={10}>
              {s}
            </Text>
            <Progress value={(n / most) * 100} w={100} size="sm" />
            <Text size="xs">{n}</Text>
          </Group>
        );
      })}
    </Stack>
  );
}

function rubricText(aggregate: Aggregate): string {
  const parts = Object.entries(aggregate.rubric).map(([c, s]) => `${c} ${formatMean(s.mean)}`);
  return parts.length ? parts.join(", ") : "—";
}

function AggregateRow({ label, aggregate }: { label: string; aggregate: Aggregate }) {
  return (
    <Table.Tr>
      <Table.Th scope="row">{label}</Table.Th>
      <Table.Td>{aggregate.count}</Table.Td>
      <Table.Td>{formatMean(aggregate.meanScore)}</Table.Td>
      <Table.Td>
        <Distribution aggregate={aggregate} />
      </Table.Td>
      <Table.Td>
        {aggregate.thumbsUp} up / {aggregate.thumbsDown} down
      </Table.Td>
      <Table.Td>{rubricText(aggregate)}</Table.Td>
      <Table.Td>{aggregate.lastAt ? new Date(aggregate.lastAt).toLocaleString() : "—"}</Table.Td>
    </Table.Tr>
  );
}

export function FeedbackSummary({ promptName }: { promptName: string }) {
  const summary = useQuery({
    queryKey: ["feedback", "summary", promptName],
    queryFn: () => unwrap(api.GET("/api/v1/feedback/summary", { params: { query: { prompt: promptName } } })),
  });
  const recent = useQuery({
    queryKey: ["feedback", "recent", promptName],
    queryFn: () => unwrap(api.GET("/api/v1/feedback", { params: { query: { prompt: promptName, limit: RECENT } } })),
  });
  if (summary.error) return <ErrorNotice error={summary.error} />;
  if (!summary.data) return <Loader role="status" aria-label="Loading feedback" />;
  const data = summary.data;
  const numbers = new Map(data.versions.map((v) => [v.versionId, v.version]));
  const comments = (recent.data?.items ?? []).filter((f) => f.notes.trim()).slice(0, SHOWN_COMMENTS);
  return (
    <Stack>
      <Title order={2} size="h3">
        Feedback
      </Title>
      {data.overall.count === 0 ? (
        <Text>No feedback on {promptName} yet. Ratings from the annotation queue, the API and the SDKs show here.</Text>
      ) : (
        <>
          <Text data-testid="feedback-overall">
            {data.overall.count} rating{data.overall.count === 1 ? "" : "s"}, mean score {formatMean(data.overall.meanScore)} of 5
            {data.overall.scored < data.overall.count ? ` (${data.overall.scored} with a score)` : ""}.
          </Text>
          {Object.keys(data.overall.tags).length > 0 && (
            <Text size="sm">
              Tags:{" "}
              {Object.entries(data.overall.tags)
                .slice(0, 10)
                .map(([tag, n]) => `${tag} (${n})`)
                .join(", ")}
            </Text>
          )}
          <Table aria-label="Feedback per version" striped>
            <TableHead columns={["Version", "Ratings", "Mean score", "Distribution (1–5)", "Thumbs", "Rubric means", "Last rating"]} />
            <Table.Tbody>
              {data.versions.map((v) => (
                <AggregateRow key={v.versionId} label={v.version == null ? v.versionId : `v${v.version}`} aggregate={v} />
              ))}
              {data.versions.length > 1 && <AggregateRow label="All versions" aggregate={data.overall} />}
            </Table.Tbody>
          </Table>
        </>
      )}
      <Title order={3} size="h4">
        Recent comments
      </Title>
      <ErrorNotice error={recent.error} />
      {recent.data && comments.length === 0 && <Text>No comment among the latest {RECENT} ratings.</Text>}
      {comments.map((f) => (
        <Blockquote key={f.id} p="sm" aria-label={`Comment by ${f.user}`}>
          <Text style={{ whiteSpace: "pre-wrap" }}>{f.notes}</Text>
          <Group gap="xs" mt={4}>
            {f.score != null && <Badge color="gray.7">score {f.score}</Badge>}
            <Text size="xs">
              {f.user} · {f.versionId && numbers.has(f.versionId) ? `v${numbers.get(f.versionId)} · ` : ""}
              {f.source} · {new Date(f.createdAt).toLocaleString()}
              {f.runId && (
                <>
                  {" · "}
                  <Anchor component={Link} to={`/runs/${f.runId}`} size="xs" underline="always">
                    run {f.runId}
                  </Anchor>
                </>
              )}
            </Text>
          </Group>
        </Blockquote>
      ))}
    </Stack>
  );
}
