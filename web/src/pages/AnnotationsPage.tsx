// The annotation queue (/annotations): a queue's items with their status, "Start rating" for the fast
// keyboard rating screen (?mode=rate), and for managers a form that fills the queue from runs (named run ids
// or a sample of a prompt's recent runs). The queue, status filter and mode live in the address.
import { Anchor, Badge, Button, Checkbox, Group, NumberInput, Paper, Select, Stack, Table, Text, TextInput, Title, Tooltip } from "@mantine/core";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useSearchParams } from "react-router";
import { api, unwrap, type Query, type Schemas } from "../api/client";
import { useCan } from "../auth";
import { CHANGE_COLOR, OK_COLOR } from "../colors";
import { ErrorNotice } from "../components/ErrorNotice";
import { Pager, useCursorPages } from "../components/Paging";
import { TableHead } from "../components/TableHead";
import { useUrlFilters } from "../urlFilters";
import { RatingScreen } from "./annotations/RatingScreen";

type Item = Schemas["AnnotationOut"];
const FILTERS = ["queue", "status"] as const;
const DEFAULT_QUEUE = "default";
const SOURCES = ["playground", "eval", "gateway", "sdk", "experiment"];
export const STATUS_COLOR: Record<Item["status"], string> = {
  pending: "gray.7",
  claimed: CHANGE_COLOR.changed,
  done: OK_COLOR,
  skipped: CHANGE_COLOR.removed,
};

/** Run ids typed in one box, separated by commas, spaces or new lines. */
export function parseIds(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))];
}

function Enqueue({ queue }: { queue: string }) {
  const client = useQueryClient();
  const [runIds, setRunIds] = useState("");
  const [prompt, setPrompt] = useState("");
  const [source, setSource] = useState<string | null>(null);
  const [limit, setLimit] = useState<number | string>(20);
  const add = useMutation({
    mutationFn: () => {
      const ids = parseIds(runIds);
      const sample = prompt.trim()
        ? { prompt: prompt.trim(), source: (source as "playground" | null) ?? null, limit: Number(limit) || 20 }
        : null;
      return unwrap(api.POST("/api/v1/annotations", { body: { queue, runIds: ids, sample } }));
    },
    onSuccess: () => {
      setRunIds("");
      return client.invalidateQueries({ queryKey: ["annotations"] });
    },
  });
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="enqueue-title">
      <Title order={2} size="h4" id="enqueue-title" mb="xs">
        Add runs to queue {queue}
      </Title>
      <Group align="end">
        <TextInput label="Run ids" description="Separated by commas or spaces" value={runIds} onChange={(e) => setRunIds(e.currentTarget.value)} w={320} />
        <Text pb={8}>or the newest runs of</Text>
        <TextInput label="Prompt" placeholder="name, name@label, name@3" value={prompt} onChange={(e) => setPrompt(e.currentTarget.value)} w={200} />
        <Select label="Run source" clearable data={SOURCES} value={source} onChange={setSource} w={140} />
        <NumberInput label="How many" min={1} max={500} value={limit} onChange={setLimit} w={100} />
        <Button onClick={() => add.mutate()} loading={add.isPending} disabled={!parseIds(runIds).length && !prompt.trim()}>
          Add to queue
        </Button>
      </Group>
      <ErrorNotice error={add.error} />
      {add.data && (
        <Text role="status" mt="xs">
          Added {add.data.created.length} item{add.data.created.length === 1 ? "" : "s"}
          {add.data.alreadyQueued.length > 0 && `; ${add.data.alreadyQueued.length} already waiting`}.
        </Text>
      )}
    </Paper>
  );
}

function Items({ queue, status, pages }: { queue: string; status?: string; pages: ReturnType<typeof useCursorPages> }) {
  const query = { queue, status, cursor: pages.cursor, limit: 50 } as Query<"/api/v1/annotations">;
  const items = useQuery({
    queryKey: ["annotations", "list", query],
    queryFn: () => unwrap(api.GET("/api/v1/annotations", { params: { query } })),
    placeholderData: keepPreviousData,
  });
  return (
    <Stack>
      <ErrorNotice error={items.error} />
      {items.data && items.data.items.length === 0 && <Text>No item in queue {queue}{status ? ` is ${status}` : ""}.</Text>}
      {items.data && items.data.items.length > 0 && (
        <Table aria-label="Queue items" striped>
          <TableHead columns={["Item", "Status", "Run", "Model", "Output", "Claimed by", "Added"]} />
          <Table.Tbody>
            {items.data.items.map((item) => (
              <Table.Tr key={item.id}>
                <Table.Td>{item.id}</Table.Td>
                <Table.Td miw={100}>
                  <Badge color={STATUS_COLOR[item.status]}>{item.status}</Badge>
                </Table.Td>
                <Table.Td>
                  {item.runId ? (
                    <Anchor component={Link} to={`/runs/${item.runId}`}>
                      {item.runId}
                    </Anchor>
                  ) : (
                    "—"
                  )}
                </Table.Td>
                <Table.Td>{item.subject?.provider ? `${item.subject.provider}/${item.subject.model}` : "—"}</Table.Td>
                <Table.Td maw={320}>
                  <Text size="sm" lineClamp={2}>
                    {item.subject?.output ?? ""}
                  </Text>
                </Table.Td>
                <Table.Td>{item.claimedBy ?? "—"}</Table.Td>
                <Table.Td>{new Date(item.createdAt).toLocaleString()}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Pager pages={pages} nextCursor={items.data?.nextCursor} labels={["Earlier", "Later"]} />
    </Stack>
  );
}

export default function AnnotationsPage() {
  const pages = useCursorPages();
  const { filters, setFilter } = useUrlFilters(FILTERS, pages.reset);
  const [params, setParams] = useSearchParams();
  const canRate = useCan("feedback:write");
  const canManage = useCan("annotation:manage");
  const queue = filters.queue || DEFAULT_QUEUE;
  const withRubric = params.get("rubric") === "1";

  function setParam(key: string, value: string | null) {
    // from the address itself: a key pressed right after another change must not undo it
    const next = new URLSearchParams(window.location.search);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: key !== "mode" });
  }

  if (params.get("mode") === "rate" && canRate) {
    return <RatingScreen queue={queue} withRubric={withRubric} onExit={() => setParam("mode", null)} />;
  }
  return (
    <Stack>
      <Title order={1} size="h2">
        Annotation queue
      </Title>
      <Text c="dimmed" size="sm">
        QA analysts rate runs on the 1–5 rubric scale; every rating is a feedback record on the run's prompt version.
      </Text>
      <Group align="end">
        <TextInput
          label="Queue"
          key={queue}
          defaultValue={queue}
          onBlur={(e) => setFilter("queue", e.currentTarget.value.trim() === DEFAULT_QUEUE ? null : e.currentTarget.value.trim())}
          onKeyDown={(e) => e.key === "Enter" && e.currentTarget.blur()}
          w={180}
        />
        <Select label="Status" clearable data={["pending", "claimed", "done", "skipped"]} value={filters.status ?? null} onChange={(v) => setFilter("status", v)} w={140} />
        <Checkbox
          label="Also rate the rubric criteria"
          checked={withRubric}
          onChange={(e) => setParam("rubric", e.currentTarget.checked ? "1" : null)}
          pb={8}
        />
        <Tooltip label="Your role cannot rate (needs feedback:write)" disabled={canRate}>
          <Button onClick={() => setParam("mode", "rate")} disabled={!canRate}>
            Start rating
          </Button>
        </Tooltip>
      </Group>
      {canManage && <Enqueue queue={queue} />}
      <Items queue={queue} status={filters.status} pages={pages} />
    </Stack>
  );
}
