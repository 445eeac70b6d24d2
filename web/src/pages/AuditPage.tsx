// The audit trail: the chain's verification status first, then the events with filters, each event's payload
// on demand, and an export of everything the filters match (JSON lines, one event a line).
import { Alert, Button, Code, Group, Loader, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Fragment, useState } from "react";
import { api, unwrap, type Schemas } from "../api/client";
import { useCan } from "../auth";
import { OK_COLOR } from "../colors";
import { ErrorNotice } from "../components/ErrorNotice";
import { Pager, useCursorPages } from "../components/Paging";
import { useUrlFilters } from "../urlFilters";
import { TableHead } from "../components/TableHead";

const FILTER_KEYS = ["promptId", "user", "eventType", "from", "to"] as const;
type Filters = Partial<Record<(typeof FILTER_KEYS)[number], string>>;
const EXPORT_LIMIT = 100_000;

function VerifyBanner() {
  const verify = useQuery({ queryKey: ["audit", "verify"], queryFn: () => unwrap(api.GET("/api/v1/audit/verify")) });
  if (verify.isLoading) return <Loader size="sm" role="status" aria-label="Verifying the chain" />;
  if (verify.error) return <ErrorNotice error={verify.error} title="The chain could not be verified" />;
  const result = verify.data!;
  return result.ok ? (
    <Alert variant="filled" color={OK_COLOR} title="Audit chain verified" data-testid="chain-status">
      All {result.eventsChecked} events link up: none was changed, removed or reordered (last seq {result.lastSeq}).
    </Alert>
  ) : (
    <Alert variant="filled" color="red.9" title="Audit chain broken" data-testid="chain-status">
      {result.problems.map((p) => (
        <Text size="sm" key={`${p.seq}-${p.kind}`}>
          seq {p.seq}: {p.kind}: {p.detail}
        </Text>
      ))}
    </Alert>
  );
}

async function exportAll(filters: Filters): Promise<void> {
  const lines: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await unwrap(api.GET("/api/v1/audit", { params: { query: { ...filters, cursor, limit: 200 } } }));
    lines.push(...page.events.map((e) => JSON.stringify(e)));
    cursor = page.nextCursor ?? undefined;
  } while (cursor && lines.length < EXPORT_LIMIT);
  const url = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "application/x-ndjson" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = `audit-${new Date().toISOString().slice(0, 19)}.jsonl`;
  link.click();
  URL.revokeObjectURL(url);
}

export default function AuditPage() {
  const canVerify = useCan("audit:verify");
  const pages = useCursorPages();
  const { filters, setFilter } = useUrlFilters(FILTER_KEYS, pages.reset);
  const [open, setOpen] = useState<string | null>(null);
  const [exporting, setExporting] = useState<unknown>(null);
  const query = { ...filters, cursor: pages.cursor, limit: 50 };
  const events = useQuery({
    queryKey: ["audit", query],
    queryFn: () => unwrap(api.GET("/api/v1/audit", { params: { query } })),
    placeholderData: keepPreviousData,
  });
  const local = (iso?: string) => (iso ? iso.slice(0, 16) : "");
  return (
    <Stack>
      <Title order={1} size="h2">
        Audit log
      </Title>
      {canVerify && <VerifyBanner />}
      <Group align="end">
        <TextInput label="Event type" placeholder="PromptDeployed" defaultValue={filters.eventType} onBlur={(e) => setFilter("eventType", e.currentTarget.value)} />
        <TextInput label="User" placeholder="email or id" defaultValue={filters.user} onBlur={(e) => setFilter("user", e.currentTarget.value)} />
        <TextInput label="Prompt" placeholder="name or id" defaultValue={filters.promptId} onBlur={(e) => setFilter("promptId", e.currentTarget.value)} />
        <TextInput label="From" type="datetime-local" defaultValue={local(filters.from)} onBlur={(e) => setFilter("from", e.currentTarget.value)} />
        <TextInput label="To" type="datetime-local" defaultValue={local(filters.to)} onBlur={(e) => setFilter("to", e.currentTarget.value)} />
        <Button
          variant="default"
          onClick={() => {
            setExporting(null);
            exportAll(filters).catch(setExporting);
          }}
        >
          Export (JSON lines)
        </Button>
      </Group>
      <ErrorNotice error={events.error ?? exporting} />
      {events.data && events.data.events.length === 0 && <Text>No event matches these filters.</Text>}
      {events.data && events.data.events.length > 0 && (
        <Table aria-label="Audit events" striped>
          <TableHead columns={["Seq", "Time", "Event", "Actor", "Prompt", "Payload"]} />
          <Table.Tbody>
            {events.data.events.map((e: Schemas["AuditEventRecord"]) => (
              <Fragment key={e.id}>
                <Table.Tr>
                  <Table.Td>{e.seq}</Table.Td>
                  <Table.Td>{new Date(e.timestamp).toLocaleString()}</Table.Td>
                  <Table.Td>{e.eventType}</Table.Td>
                  <Table.Td>{e.user ?? e.actorId}</Table.Td>
                  <Table.Td>{e.promptId ?? "—"}</Table.Td>
                  <Table.Td>
                    <Button size="compact-sm" variant="default" aria-expanded={open === e.id} onClick={() => setOpen(open === e.id ? null : e.id)}>
                      {open === e.id ? "Hide" : "Show"}
                    </Button>
                  </Table.Td>
                </Table.Tr>
                {open === e.id && (
                  <Table.Tr>
                    <Table.Td colSpan={6}>
                      <Code block>{JSON.stringify({ data: e.data, requestId: e.requestId, hash: e.hash, prevHash: e.prevHash }, null, 2)}</Code>
                    </Table.Td>
                  </Table.Tr>
                )}
              </Fragment>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Pager pages={pages} nextCursor={events.data?.nextCursor} labels={["Newer", "Older"]} />
    </Stack>
  );
}
