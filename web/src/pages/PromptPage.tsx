import {
  Badge,
  Button,
  Code,
  Group,
  Loader,
  Modal,
  Select,
  Stack,
  Table,
  Tabs,
  Text,
  TextInput,
  Textarea,
  Title,
  Tooltip,
} from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { lazy, Suspense, useEffect, useState } from "react";
import { Link, useLocation, useParams, useSearchParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { isApprovalRequest, type ApprovalRequest } from "../approvals";
import { ApprovalNotice } from "../components/ApprovalNotice";
import { useCan } from "../auth";
import { SEVERITY_COLOR } from "../colors";
import { DiffView } from "../components/DiffView";
import { ErrorNotice } from "../components/ErrorNotice";
import { EvalHistory } from "../components/EvalHistory";
import { FeedbackSummary } from "../components/FeedbackSummary";
import { Lineage } from "../components/Lineage";
import { NearDuplicateWarning } from "../components/NearDuplicates";
import { SimilarPrompts } from "../components/SimilarPrompts";
import { TableHead } from "../components/TableHead";
import { optimizeUrl, playgroundUrl, savedState, type SavedState } from "../paths";

type Version = Schemas["VersionOut"];

// CodeMirror is big: the editor is its own chunk, loaded when the tab opens.
const VersionEditor = lazy(() => import("./VersionEditor"));

function usePromptQueries(name: string) {
  const path = { name };
  const resolved = useQuery({
    queryKey: ["prompt", name],
    queryFn: () => unwrap(api.GET("/api/v1/prompts/{name}", { params: { path } })),
  });
  const versions = useQuery({
    queryKey: ["prompt", name, "versions"],
    queryFn: () => unwrap(api.GET("/api/v1/prompts/{name}/versions", { params: { path, query: { limit: 200 } } })),
  });
  const labels = useQuery({
    queryKey: ["prompt", name, "labels"],
    queryFn: () => unwrap(api.GET("/api/v1/prompts/{name}/labels", { params: { path } })),
  });
  const history = useQuery({
    queryKey: ["prompt", name, "history"],
    queryFn: () => unwrap(api.GET("/api/v1/prompts/{name}/history", { params: { path, query: { limit: 100 } } })),
  });
  return { resolved, versions, labels, history };
}

function useDiff(name: string, from: string | null, to: string | null) {
  return useQuery({
    queryKey: ["prompt", name, "diff", from, to],
    queryFn: () =>
      unwrap(api.GET("/api/v1/prompts/{name}/diff", { params: { path: { name }, query: { from: from!, to: to! } } })),
    enabled: Boolean(from && to),
  });
}

function VersionBody({ version }: { version: Version }) {
  return (
    <Stack gap="xs">
      {version.kind === "chat" ? (
        (version.messages ?? []).map((message, index) => (
          <Code block key={index} aria-label={`Message ${index + 1}`}>
            {`[${String(message.role)}]\n${String(message.content)}`}
          </Code>
        ))
      ) : (
        <Code block aria-label="Template">
          {version.template}
        </Code>
      )}
      <Text size="sm">
        Variables:{" "}
        {version.variables.length === 0
          ? "none"
          : version.variables.map((v) => `${String(v.name)}: ${String(v.type)}${v.required ? "" : "?"}`).join(", ")}
      </Text>
      <Text size="sm">Model: {JSON.stringify(version.modelConfig)}</Text>
    </Stack>
  );
}

function VersionsTab({ versions, onPick, picked }: { versions: Version[]; picked: number; onPick: (n: number) => void }) {
  const current = versions.find((v) => v.version === picked) ?? versions[0];
  return (
    <Stack>
      <Table highlightOnHover aria-label="Versions">
        <TableHead columns={["Version", "Message", "Source", "Author", "Created", "Labels"]} />
        <Table.Tbody>
          {versions.map((v) => (
            <Table.Tr key={v.id} onClick={() => onPick(v.version)} style={{ cursor: "pointer" }}>
              <Table.Td>
                <Button variant={v.version === current?.version ? "light" : "subtle"} size="compact-sm" onClick={() => onPick(v.version)}>
                  v{v.version}
                </Button>
              </Table.Td>
              <Table.Td>{v.commitMessage}</Table.Td>
              <Table.Td>{v.source}</Table.Td>
              <Table.Td>{v.createdBy ?? "—"}</Table.Td>
              <Table.Td>{new Date(v.createdAt).toLocaleString()}</Table.Td>
              <Table.Td>
                <Group gap={4}>
                  {v.labels.map((l) => (
                    <Badge key={l} size="sm">
                      {l}
                    </Badge>
                  ))}
                </Group>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {current && (
        <>
          <Title order={2} size="h4">
            Version {current.version}
          </Title>
          <VersionBody version={current} />
          <Title order={3} size="h5">
            Lint
          </Title>
          {(current.lint ?? []).length === 0 ? (
            <Text size="sm">No findings.</Text>
          ) : (
            <Table aria-label="Lint findings">
              <Table.Tbody>
                {(current.lint ?? []).map((f, index) => (
                  <Table.Tr key={index}>
                    <Table.Td>
                      <Badge color={SEVERITY_COLOR[f.severity] ?? "gray.7"}>{f.severity}</Badge>
                    </Table.Td>
                    <Table.Td>
                      {f.rule} {f.name}
                    </Table.Td>
                    <Table.Td>{f.message}</Table.Td>
                    <Table.Td>{f.hint}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </>
      )}
    </Stack>
  );
}

/** A label move answered 202 on a label gated by approvals: the request it became (shown as a notice). */
type OnPending = (request: ApprovalRequest | null) => void;

function MoveLabel({ name, versions, current, onPending }: { name: string; versions: Version[]; current: Record<string, number>; onPending: OnPending }) {
  const [label, setLabel] = useState("");
  const [target, setTarget] = useState<string | null>(null);
  const [reason, setReason] = useState("");
  const [reviewing, setReviewing] = useState(false);
  const from = label && current[label] ? String(current[label]) : null;
  const diff = useDiff(name, reviewing ? from : null, reviewing ? target : null);
  const client = useQueryClient();
  const move = useMutation({
    mutationFn: () =>
      unwrap(
        api.PUT("/api/v1/prompts/{name}/labels/{label}", {
          params: { path: { name, label } },
          body: { version: Number(target), reason },
        }),
      ),
    onSuccess: async (answer) => {
      setReviewing(false);
      setReason("");
      onPending(isApprovalRequest(answer) ? answer : null);
      await client.invalidateQueries({ queryKey: ["prompt", name] });
    },
  });
  return (
    <Stack>
      <Title order={2} size="h4">
        Move a label
      </Title>
      <Group align="end">
        <TextInput label="Label" placeholder="production" value={label} onChange={(e) => setLabel(e.currentTarget.value.trim())} w={180} />
        <Select
          label="To version"
          data={versions.map((v) => ({ value: String(v.version), label: `v${v.version} ${v.commitMessage}`.trim() }))}
          value={target}
          onChange={setTarget}
          w={220}
        />
        <TextInput label="Reason" value={reason} onChange={(e) => setReason(e.currentTarget.value)} w={260} />
        <Button disabled={!label || !target} onClick={() => setReviewing(true)}>
          Review and move
        </Button>
      </Group>
      <Modal opened={reviewing} onClose={() => setReviewing(false)} title={`Move ${label} to v${target}`} size="xl">
        <Stack>
          {from ? (
            <Text>
              {label} points at v{from} now. The change it ships:
            </Text>
          ) : (
            <Text>{label} is new on this prompt.</Text>
          )}
          {diff.isLoading && <Loader size="sm" role="status" aria-label="Loading the diff" />}
          {diff.data && <DiffView diff={diff.data} />}
          <ErrorNotice error={diff.error ?? move.error} />
          <Textarea label="Reason" value={reason} onChange={(e) => setReason(e.currentTarget.value)} />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setReviewing(false)}>
              Cancel
            </Button>
            <Button onClick={() => move.mutate()} loading={move.isPending}>
              Confirm move
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Stack>
  );
}

function RollbackButton({ name, label, onPending }: { name: string; label: Schemas["LabelOut"]; onPending: OnPending }) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState("");
  const client = useQueryClient();
  const history = useQuery({
    queryKey: ["prompt", name, "history"],
    queryFn: () => unwrap(api.GET("/api/v1/prompts/{name}/history", { params: { path: { name }, query: { limit: 100 } } })),
    enabled: open,
  });
  const previous = history.data?.find((e) => e.label === label.name && e.toVersion === label.version)?.fromVersion ?? null;
  const diff = useDiff(name, open ? String(label.version) : null, open && previous ? String(previous) : null);
  const rollback = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/v1/prompts/{name}/labels/{label}/rollback", {
          params: { path: { name, label: label.name } },
          body: { reason },
        }),
      ),
    onSuccess: async (answer) => {
      setOpen(false);
      onPending(isApprovalRequest(answer) ? answer : null);
      await client.invalidateQueries({ queryKey: ["prompt", name] });
    },
  });
  return (
    <>
      <Button size="compact-sm" variant="default" onClick={() => setOpen(true)}>
        Roll back
      </Button>
      <Modal opened={open} onClose={() => setOpen(false)} title={`Roll back ${label.name}`} size="xl">
        <Stack>
          <Text>
            {previous
              ? `${label.name} goes back from v${label.version} to v${previous}. The change it ships:`
              : `${label.name} has no earlier version to go back to.`}
          </Text>
          {diff.data && <DiffView diff={diff.data} />}
          <Textarea label="Reason" required value={reason} onChange={(e) => setReason(e.currentTarget.value)} />
          <ErrorNotice error={rollback.error} />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setOpen(false)}>
              Cancel
            </Button>
            <Button color="red" disabled={!previous} onClick={() => rollback.mutate()} loading={rollback.isPending}>
              Confirm rollback
            </Button>
          </Group>
        </Stack>
      </Modal>
    </>
  );
}

function LabelsTab({ name, versions, labels, history }: { name: string; versions: Version[]; labels: Schemas["LabelOut"][]; history: Schemas["LabelEventOut"][] }) {
  const canMove = useCan("label:write");
  const canDeploy = useCan("label:deploy");
  const current = Object.fromEntries(labels.map((l) => [l.name, l.version]));
  const [pending, setPending] = useState<ApprovalRequest | null>(null);
  return (
    <Stack>
      {pending && <ApprovalNotice request={pending} onClose={() => setPending(null)} />}
      <Table aria-label="Labels">
        <TableHead columns={["Label", "Version", "Updated", "Actions"]} />
        <Table.Tbody>
          {labels.map((label) => (
            <Table.Tr key={label.name}>
              <Table.Td>
                <Badge>{label.name}</Badge> {label.deployable && <Badge variant="outline">deployable</Badge>}
              </Table.Td>
              <Table.Td>v{label.version}</Table.Td>
              <Table.Td>{new Date(label.updatedAt).toLocaleString()}</Table.Td>
              <Table.Td>
                {(label.deployable ? canDeploy : canMove) ? (
                  <RollbackButton name={name} label={label} onPending={setPending} />
                ) : (
                  <Tooltip label="Your role cannot move this label">
                    <Button size="compact-sm" variant="default" disabled>
                      Roll back
                    </Button>
                  </Tooltip>
                )}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {canMove ? <MoveLabel name={name} versions={versions} current={current} onPending={setPending} /> : <Text c="dimmed">Your role can read labels but not move them.</Text>}
      <Title order={2} size="h4">
        History
      </Title>
      <Table aria-label="Label history">
        <TableHead columns={["When", "Label", "Action", "From", "To", "Reason", "By"]} />
        <Table.Tbody>
          {history.map((event) => (
            <Table.Tr key={event.id}>
              <Table.Td>{new Date(event.createdAt).toLocaleString()}</Table.Td>
              <Table.Td>{event.label}</Table.Td>
              <Table.Td>{event.action}</Table.Td>
              <Table.Td>{event.fromVersion ? `v${event.fromVersion}` : "—"}</Table.Td>
              <Table.Td>{event.toVersion ? `v${event.toVersion}` : "—"}</Table.Td>
              <Table.Td>{event.reason}</Table.Td>
              <Table.Td>{event.actorId ?? "—"}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}

function DiffTab({ name, versions }: { name: string; versions: Version[] }) {
  const numbers = versions.map((v) => String(v.version));
  // Until the user picks, compare the two newest versions (a version saved meanwhile moves the default).
  const [pickedFrom, setFrom] = useState<string | null>(null);
  const [pickedTo, setTo] = useState<string | null>(null);
  const from = pickedFrom ?? numbers[1] ?? numbers[0] ?? null;
  const to = pickedTo ?? numbers[0] ?? null;
  const diff = useDiff(name, from, to);
  const data = numbers.map((n) => ({ value: n, label: `v${n}` }));
  return (
    <Stack>
      <Group>
        <Select label="From" data={data} value={from} onChange={setFrom} w={120} />
        <Select label="To" data={data} value={to} onChange={setTo} w={120} />
      </Group>
      <ErrorNotice error={diff.error} />
      {diff.data && <DiffView diff={diff.data} />}
    </Stack>
  );
}

/** Where to take this prompt next: the playground, an evaluation, a refinement (for the roles that can). */
function PromptActions({ name, version }: { name: string; version: number }) {
  const links = [
    { to: playgroundUrl(name, { version }), label: "Open in playground", allowed: useCan("playground:run") },
    { to: `/evals?new=1&prompt=${encodeURIComponent(name)}`, label: "Evaluate", allowed: useCan("eval:run") },
    { to: optimizeUrl("refine", name), label: "Refine", allowed: useCan("prompt:optimize") },
    { to: optimizeUrl("optimize", name), label: "Optimize", allowed: useCan("prompt:optimize") },
  ].filter((l) => l.allowed);
  return links.map((l) => (
    <Button key={l.label} component={Link} to={l.to} size="xs" variant="default">
      {l.label}
    </Button>
  ));
}

export default function PromptPage() {
  const name = useParams()["*"] ?? "";
  const [params, setParams] = useSearchParams();
  const tab = params.get("tab") ?? "versions";
  const { resolved, versions, labels, history } = usePromptQueries(name);
  const [picked, setPicked] = useState(0);
  const canWrite = useCan("prompt:write");
  // The last save's near-duplicate warning: from the editor below, or from the new-prompt dialog (history state).
  const location = useLocation();
  const [saved, setSaved] = useState<SavedState | null>(() => savedState(location.state));
  useEffect(() => {
    const carried = savedState(location.state);
    if (carried) setSaved(carried);
  }, [location.key, location.state]);
  if (resolved.isLoading) return <Loader role="status" aria-label="Loading" />;
  if (resolved.error) return <ErrorNotice error={resolved.error} />;
  const prompt = resolved.data!.prompt;
  const items = versions.data?.items ?? [];
  return (
    <Stack>
      <Group justify="space-between">
        <Stack gap={2}>
          <Title order={1} size="h2">
            {prompt.name}
          </Title>
          <Text c="dimmed">{prompt.description}</Text>
        </Stack>
        <Group gap="xs">
          {prompt.tags.map((t) => (
            <Badge key={t} variant="outline">
              {t}
            </Badge>
          ))}
          <PromptActions name={prompt.name} version={resolved.data!.version.version} />
        </Group>
      </Group>
      {saved && saved.name === prompt.name && (
        <NearDuplicateWarning name={saved.name} version={saved.version} duplicates={saved.nearDuplicates} onClose={() => setSaved(null)} />
      )}
      <SimilarPrompts name={prompt.name} />
      <Tabs value={tab} onChange={(value) => setParams({ tab: value ?? "versions" }, { replace: true })}>
        <Tabs.List>
          <Tabs.Tab value="versions">Versions ({prompt.latestVersion})</Tabs.Tab>
          <Tabs.Tab value="labels">Labels</Tabs.Tab>
          <Tabs.Tab value="diff">Diff</Tabs.Tab>
          <Tabs.Tab value="lineage">Lineage</Tabs.Tab>
          <Tabs.Tab value="evaluations">Evaluations</Tabs.Tab>
          <Tabs.Tab value="feedback">Feedback</Tabs.Tab>
          {canWrite && !prompt.archived && <Tabs.Tab value="edit">New version</Tabs.Tab>}
        </Tabs.List>
        <Tabs.Panel value="versions" pt="md">
          <ErrorNotice error={versions.error} />
          {items.length > 0 && <VersionsTab versions={items} picked={picked || items[0].version} onPick={setPicked} />}
        </Tabs.Panel>
        <Tabs.Panel value="labels" pt="md">
          <ErrorNotice error={labels.error ?? history.error} />
          {labels.data && history.data && <LabelsTab name={name} versions={items} labels={labels.data} history={history.data} />}
        </Tabs.Panel>
        <Tabs.Panel value="diff" pt="md">
          {items.length > 0 && <DiffTab name={name} versions={items} />}
        </Tabs.Panel>
        <Tabs.Panel value="evaluations" pt="md">
          {tab === "evaluations" && <EvalHistory promptName={name} />}
        </Tabs.Panel>
        <Tabs.Panel value="feedback" pt="md">
          {tab === "feedback" && <FeedbackSummary promptName={name} />}
        </Tabs.Panel>
        <Tabs.Panel value="lineage" pt="md">
          {tab === "lineage" && <Lineage name={name} versions={items.map((v) => v.version)} />}
        </Tabs.Panel>
        {canWrite && tab === "edit" && (
          <Tabs.Panel value="edit" pt="md">
            <Suspense fallback={<Loader role="status" aria-label="Loading the editor" />}>
              <VersionEditor
                name={name}
                base={resolved.data!.version}
                onSaved={(result) => {
                  setSaved(result);
                  setPicked(result.version);
                  setParams({ tab: "versions" }, { replace: true });
                }}
              />
            </Suspense>
          </Tabs.Panel>
        )}
      </Tabs>
    </Stack>
  );
}
