// The alert inbox (/alerts): alerts newest first, filtered by status (active = open or acknowledged, the
// default) and severity, kept in the address. ?alert=ID opens one alert: what fired and why, its history,
// acknowledge / resolve, and "Review in annotation queue" that queues the affected runs and opens the queue.
import { Anchor, Badge, Button, Code, Group, Paper, Select, SimpleGrid, Stack, Table, Text, Textarea, Title, Tooltip } from "@mantine/core";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, unwrap, type Query, type Schemas } from "../api/client";
import { useCan } from "../auth";
import { OK_COLOR, SEVERITY_COLOR } from "../colors";
import { ErrorNotice } from "../components/ErrorNotice";
import { Pager, useCursorPages } from "../components/Paging";
import { TableHead } from "../components/TableHead";
import { useUrlFilters } from "../urlFilters";

type Alert = Schemas["AlertOut"];
type AlertDetail = Schemas["AlertDetailOut"];
const FILTERS = ["status", "severity"] as const;
const STATUSES = [
  { value: "active", label: "Active (open or acknowledged)" },
  { value: "open", label: "Open" },
  { value: "acknowledged", label: "Acknowledged" },
  { value: "resolved", label: "Resolved" },
  { value: "all", label: "All" },
];
export const STATUS_COLOR: Record<Alert["status"], string> = { open: "red.9", acknowledged: "#8f5b00", resolved: OK_COLOR };
export const SEVERITY_BADGE: Record<Alert["severity"], string> = {
  critical: "red.9",
  warning: SEVERITY_COLOR.warning,
  info: SEVERITY_COLOR.info,
};
const KIND_LABEL: Record<Alert["kind"], string> = {
  threshold: "Threshold",
  drift: "Drift",
  regression: "Regression",
  experiment_guardrail: "Experiment guardrail",
};

/** "open", "acknowledged by …", "resolved automatically" / "resolved by …". */
export function statusText(alert: Pick<Alert, "status" | "acknowledgedBy" | "resolvedBy" | "resolution">): string {
  if (alert.status === "resolved") return alert.resolution === "auto" ? "resolved automatically" : `resolved by ${alert.resolvedBy ?? "someone"}`;
  if (alert.status === "acknowledged") return `acknowledged by ${alert.acknowledgedBy ?? "someone"}`;
  return "open";
}

/** How often and since when the condition was found: "once" or "3 times since …". */
export function seenText(alert: Pick<Alert, "count" | "firstSeenAt" | "lastSeenAt">, locale?: string): string {
  const first = new Date(alert.firstSeenAt).toLocaleString(locale);
  if (alert.count <= 1) return `once, at ${first}`;
  return `${alert.count} times, ${first} – ${new Date(alert.lastSeenAt).toLocaleString(locale)}`;
}

/** The measurement of an alert's details as label/value pairs worth showing (lists and nested objects left out). */
export function detailPairs(details: Record<string, unknown>): [string, string][] {
  const shown: [string, string][] = [];
  for (const [key, value] of Object.entries(details)) {
    if (value === null || value === undefined || typeof value === "object") continue;
    const text = typeof value === "number" && !Number.isInteger(value) ? value.toPrecision(4) : String(value);
    shown.push([key.replace(/([A-Z])/g, " $1").toLowerCase(), text]);
  }
  return shown;
}

function SeverityBadge({ severity }: { severity: Alert["severity"] }) {
  return <Badge color={SEVERITY_BADGE[severity]}>{severity}</Badge>;
}

function StatusBadge({ status }: { status: Alert["status"] }) {
  return (
    <Badge color={STATUS_COLOR[status]} variant={status === "resolved" ? "light" : "filled"}>
      {status}
    </Badge>
  );
}

function Detail({ alertId, onClose }: { alertId: string; onClose: () => void }) {
  const client = useQueryClient();
  const navigate = useNavigate();
  const canManage = useCan("alert:manage");
  const canReview = useCan("annotation:manage");
  const [note, setNote] = useState("");
  const detail = useQuery({
    queryKey: ["alerts", "one", alertId],
    queryFn: () => unwrap(api.GET("/api/v1/alerts/{alert_id}", { params: { path: { alert_id: alertId } } })),
  });
  const done = (data: AlertDetail) => {
    setNote("");
    client.setQueryData(["alerts", "one", alertId], data);
    return client.invalidateQueries({ queryKey: ["alerts", "list"] });
  };
  const ack = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/alerts/{alert_id}/ack", { params: { path: { alert_id: alertId } }, body: { note } })),
    onSuccess: done,
  });
  const resolve = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/alerts/{alert_id}/resolve", { params: { path: { alert_id: alertId } }, body: { note } })),
    onSuccess: done,
  });
  const review = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/alerts/{alert_id}/annotation-queue", { params: { path: { alert_id: alertId } } })),
    onSuccess: (found) => navigate(`/annotations?queue=${encodeURIComponent(found.queue)}`),
  });
  const alert = detail.data;
  if (detail.error) return <ErrorNotice error={detail.error} />;
  if (!alert) return <Text>Loading alert…</Text>;
  const pairs = detailPairs(alert.details as Record<string, unknown>);
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="alert-title">
      <Stack>
        <Group justify="space-between" align="start">
          <Stack gap={4}>
            <Group gap="xs">
              <SeverityBadge severity={alert.severity} />
              <StatusBadge status={alert.status} />
              <Text size="sm" c="dimmed">
                {KIND_LABEL[alert.kind]} · rule {alert.ruleName} · {alert.subject}
              </Text>
            </Group>
            <Title order={2} size="h3" id="alert-title">
              {alert.title}
            </Title>
          </Stack>
          <Button variant="default" onClick={onClose}>
            Back to the inbox
          </Button>
        </Group>
        {alert.summary && <Text>{alert.summary}</Text>}
        <Text size="sm">
          Seen {seenText(alert)}; {statusText(alert)}.
        </Text>
        {pairs.length > 0 && (
          <SimpleGrid cols={{ base: 2, sm: 4 }} spacing="xs" aria-label="Measurement">
            {pairs.map(([label, value]) => (
              <Stack gap={0} key={label}>
                <Text size="xs" c="dimmed">
                  {label}
                </Text>
                <Text size="sm">{value}</Text>
              </Stack>
            ))}
          </SimpleGrid>
        )}
        {typeof alert.details.verdict === "string" && <Code block>{alert.details.verdict}</Code>}
        {typeof alert.details.evalRunId === "string" && (
          <Anchor component={Link} to={`/evals/${alert.details.evalRunId}`}>
            Open the evaluation run
          </Anchor>
        )}
        <Group align="end">
          {alert.status !== "resolved" && canManage && (
            <Textarea label="Note" description="Kept in the alert's history" value={note} onChange={(e) => setNote(e.currentTarget.value)} w={320} rows={1} maxLength={2000} />
          )}
          {alert.status === "open" && (
            <Tooltip label="Your role cannot acknowledge alerts (needs alert:manage)" disabled={canManage}>
              <Button onClick={() => ack.mutate()} loading={ack.isPending} disabled={!canManage}>
                Acknowledge
              </Button>
            </Tooltip>
          )}
          {alert.status !== "resolved" && (
            <Tooltip label="Your role cannot resolve alerts (needs alert:manage)" disabled={canManage}>
              <Button variant="default" onClick={() => resolve.mutate()} loading={resolve.isPending} disabled={!canManage}>
                Resolve
              </Button>
            </Tooltip>
          )}
          <Tooltip label="Your role cannot fill annotation queues (needs annotation:manage)" disabled={canReview}>
            <Button variant="default" onClick={() => review.mutate()} loading={review.isPending} disabled={!canReview}>
              Review in annotation queue
            </Button>
          </Tooltip>
          {alert.annotationQueue && (
            <Anchor component={Link} to={`/annotations?queue=${encodeURIComponent(alert.annotationQueue)}`}>
              Queue {alert.annotationQueue}
            </Anchor>
          )}
        </Group>
        <ErrorNotice error={ack.error ?? resolve.error ?? review.error} />
        <Title order={3} size="h4">
          History
        </Title>
        <Table aria-label="Alert history" striped>
          <TableHead columns={["When", "Event", "By", "What"]} />
          <Table.Tbody>
            {alert.events.map((e) => (
              <Table.Tr key={e.id}>
                <Table.Td>{new Date(e.createdAt).toLocaleString()}</Table.Td>
                <Table.Td>{e.kind.replace("_", " ")}</Table.Td>
                <Table.Td>{e.actor}</Table.Td>
                <Table.Td>{e.message}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Stack>
    </Paper>
  );
}

function Inbox({ status, severity, pages, open }: { status: string; severity?: string; pages: ReturnType<typeof useCursorPages>; open: (id: string) => void }) {
  const query = {
    status: status === "all" ? undefined : status,
    severity,
    cursor: pages.cursor,
    limit: 50,
  } as Query<"/api/v1/alerts">;
  const alerts = useQuery({
    queryKey: ["alerts", "list", query],
    queryFn: () => unwrap(api.GET("/api/v1/alerts", { params: { query } })),
    placeholderData: keepPreviousData,
    refetchInterval: 30_000,
  });
  return (
    <Stack>
      <ErrorNotice error={alerts.error} />
      {alerts.data && alerts.data.items.length === 0 && <Text>No {status === "all" ? "" : `${status} `}alerts.</Text>}
      {alerts.data && alerts.data.items.length > 0 && (
        <Table aria-label="Alerts" striped highlightOnHover>
          <TableHead columns={["Severity", "Status", "Alert", "Rule", "Seen", "Last seen"]} />
          <Table.Tbody>
            {alerts.data.items.map((a) => (
              <Table.Tr key={a.id}>
                <Table.Td>
                  <SeverityBadge severity={a.severity} />
                </Table.Td>
                <Table.Td>
                  <StatusBadge status={a.status} />
                </Table.Td>
                <Table.Td>
                  <Anchor component="button" type="button" onClick={() => open(a.id)} ta="left">
                    {a.title}
                  </Anchor>
                </Table.Td>
                <Table.Td>
                  {a.ruleName} <Text span size="xs" c="dimmed">({KIND_LABEL[a.kind]})</Text>
                </Table.Td>
                <Table.Td>{a.count}×</Table.Td>
                <Table.Td>{new Date(a.lastSeenAt).toLocaleString()}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Pager pages={pages} nextCursor={alerts.data?.nextCursor} labels={["Newer", "Older"]} />
    </Stack>
  );
}

export default function AlertsPage() {
  const pages = useCursorPages();
  const { filters, setFilter } = useUrlFilters(FILTERS, pages.reset);
  const [params, setParams] = useSearchParams();
  const alertId = params.get("alert");
  const status = filters.status ?? "active";

  function openAlert(id: string | null) {
    const next = new URLSearchParams(window.location.search);
    if (id) next.set("alert", id);
    else next.delete("alert");
    setParams(next);
  }

  return (
    <Stack>
      <Title order={1} size="h2">
        Alerts
      </Title>
      <Text c="dimmed" size="sm">
        Alerts from threshold, drift, regression and experiment guardrail rules. One alert per rule and subject stays open
        while its condition holds; it resolves by itself when the condition clears.
      </Text>
      {alertId ? (
        <Detail alertId={alertId} onClose={() => openAlert(null)} />
      ) : (
        <>
          <Group align="end">
            <Select label="Status" data={STATUSES} value={status} allowDeselect={false} onChange={(v) => setFilter("status", v === "active" ? null : v)} w={260} />
            <Select label="Severity" clearable data={["critical", "warning", "info"]} value={filters.severity ?? null} onChange={(v) => setFilter("severity", v)} w={160} />
          </Group>
          <Inbox status={status} severity={filters.severity} pages={pages} open={openAlert} />
        </>
      )}
    </Stack>
  );
}
