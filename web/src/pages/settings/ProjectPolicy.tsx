// Project policy in settings: model prices (what cost figures are computed from) and the rules that guard
// labels — which labels are deployments (need label:deploy), which only take lint-clean versions, and how
// each lint rule applies in this project.
import { Badge, Button, Group, Modal, MultiSelect, NumberInput, Select, Stack, Switch, Table, TagsInput, Text, TextInput, Title, Tooltip } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { api, unwrap, type Schemas } from "../../api/client";
import { useCan, useMe } from "../../auth";
import { ErrorNotice } from "../../components/ErrorNotice";
import { TableHead } from "../../components/TableHead";

type Price = Schemas["PriceIn"];
type Severity = Schemas["LintRuleOut"]["severity"];
const SEVERITIES: Severity[] = ["error", "warning", "info"];
const DEFAULT_DEPLOYABLE = ["production"];

function PriceForm({ initial, onClose }: { initial: Price; onClose: () => void }) {
  const [price, setPrice] = useState<Price>(initial);
  const client = useQueryClient();
  const save = useMutation({
    mutationFn: () => unwrap(api.PUT("/api/v1/models/prices", { body: price })),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ["models"] });
      onClose();
    },
  });
  const known = Boolean(initial.model);
  const number = (key: "inputPer1M" | "outputPer1M") => (value: string | number) => setPrice({ ...price, [key]: Number(value) || 0 });
  return (
    <Modal opened onClose={onClose} title={known ? `Price of ${initial.provider}/${initial.model}` : "Add a model price"}>
      <form
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          save.mutate();
        }}
      >
        <Stack>
          <TextInput label="Provider" required disabled={known} value={price.provider} onChange={(e) => setPrice({ ...price, provider: e.currentTarget.value })} />
          <TextInput label="Model" required disabled={known} value={price.model} onChange={(e) => setPrice({ ...price, model: e.currentTarget.value })} />
          <NumberInput label="Input, USD per 1M tokens" min={0} max={10000} decimalScale={4} value={price.inputPer1M} onChange={number("inputPer1M")} />
          <NumberInput label="Output, USD per 1M tokens" min={0} max={10000} decimalScale={4} value={price.outputPer1M} onChange={number("outputPer1M")} />
          <NumberInput
            label="Context window (tokens)"
            description="Leave empty to keep the catalog's"
            min={1}
            value={price.contextWindow ?? ""}
            onChange={(v) => setPrice({ ...price, contextWindow: v === "" ? null : Number(v) })}
          />
          <ErrorNotice error={save.error} title="The price was not saved" />
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={save.isPending}>
              Save price
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

export function ModelPrices() {
  const canManage = useCan("provider:manage");
  const models = useQuery({ queryKey: ["models"], queryFn: () => unwrap(api.GET("/api/v1/models")) });
  const [editing, setEditing] = useState<Price | null>(null);
  const usd = (n: number) => `$${n.toFixed(n < 1 ? 4 : 2)}`;
  return (
    <Stack>
      <Group justify="space-between">
        <Text size="sm">Costs of runs, evaluations and dashboards are computed from these prices (USD per million tokens).</Text>
        <Tooltip label="Your role cannot change prices" disabled={canManage}>
          <Button disabled={!canManage} onClick={() => setEditing({ provider: "", model: "", inputPer1M: 0, outputPer1M: 0, contextWindow: null })}>
            Add a model price
          </Button>
        </Tooltip>
      </Group>
      <ErrorNotice error={models.error} />
      <Table aria-label="Model prices" striped>
        <TableHead columns={["Provider", "Model", "Input / 1M", "Output / 1M", "Context window", "Source", ""]} />
        <Table.Tbody>
          {(models.data ?? []).map((m) => (
            <Table.Tr key={`${m.provider}/${m.model}`}>
              <Table.Td>{m.provider}</Table.Td>
              <Table.Td>{m.model}</Table.Td>
              <Table.Td>{usd(m.inputPer1M)}</Table.Td>
              <Table.Td>{usd(m.outputPer1M)}</Table.Td>
              <Table.Td>{m.contextWindow?.toLocaleString() ?? "—"}</Table.Td>
              <Table.Td>
                <Badge color={m.source === "project" ? undefined : "gray.7"}>
                  {m.source === "project" ? "this project" : "catalog"}
                </Badge>
              </Table.Td>
              <Table.Td>
                {canManage && (
                  <Button size="compact-sm" variant="default" aria-label={`Edit the price of ${m.provider}/${m.model}`} onClick={() => setEditing({ ...m })}>
                    Edit
                  </Button>
                )}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {editing && <PriceForm initial={editing} onClose={() => setEditing(null)} />}
    </Stack>
  );
}

type LintSettings = Schemas["LintSettingsIn"];

/** The project's current settings object (from the project list: the one this session works in). */
function useProjectSettings() {
  const me = useMe();
  const projects = useQuery({ queryKey: ["projects"], queryFn: () => unwrap(api.GET("/api/v1/projects")) });
  const project = projects.data?.find((p) => p.id === me.projectId);
  return { project, error: projects.error, isLoading: projects.isLoading };
}

function PolicyForm({ settings, rules }: { settings: Record<string, unknown>; rules: Schemas["LintRuleOut"][] }) {
  const canManage = useCan("project:manage");
  const client = useQueryClient();
  const lint = (settings.lint ?? {}) as Partial<LintSettings>;
  const [deployable, setDeployable] = useState<string[]>((settings.deployableLabels as string[] | undefined) ?? DEFAULT_DEPLOYABLE);
  const [blockOnLabels, setBlockOnLabels] = useState<string[]>(lint.blockOnLabels ?? []);
  const [blockOn, setBlockOn] = useState<"error" | "warning">(lint.blockOn ?? "error");
  const [expected, setExpected] = useState<string[]>(lint.expectedLabels ?? []);
  const [contextTokens, setContextTokens] = useState<number | null>(lint.contextTokens ?? null);
  const [disabled, setDisabled] = useState<Set<string>>(new Set(rules.filter((r) => !r.enabled).map((r) => r.id)));
  const [severity, setSeverity] = useState<Record<string, Severity>>(Object.fromEntries(rules.map((r) => [r.id, r.severity])));
  const save = useMutation({
    mutationFn: () => {
      const overrides = Object.fromEntries(rules.filter((r) => severity[r.id] !== r.defaultSeverity).map((r) => [r.id, severity[r.id]]));
      const body: LintSettings = {
        blockOn,
        blockOnLabels,
        disabled: [...disabled].sort(),
        severity: overrides,
        expectedLabels: expected.length ? expected : null,
        contextTokens,
      };
      return unwrap(api.PATCH("/api/v1/projects/current", { body: { settings: { deployableLabels: deployable, lint: body } } }));
    },
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ["projects"] });
      await client.invalidateQueries({ queryKey: ["lint-rules"] });
    },
  });
  const locked = !canManage;
  return (
    <form
      aria-label="Label protection and lint settings"
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        save.mutate();
      }}
    >
      <Stack>
        {locked && <Text size="sm">Your role can read these settings; a project admin changes them.</Text>}
        <Title order={2} size="h4">
          Protected labels
        </Title>
        <TagsInput
          label="Deployment labels"
          description="Moving these labels is a deployment: it needs the label:deploy permission"
          value={deployable}
          onChange={setDeployable}
          disabled={locked}
        />
        <TagsInput
          label="Lint-gated labels"
          description="These labels only accept versions without blocking lint findings"
          value={blockOnLabels}
          onChange={setBlockOnLabels}
          disabled={locked}
        />
        <Select
          label="Findings that block a gated label"
          data={[
            { value: "error", label: "Errors" },
            { value: "warning", label: "Warnings and errors" },
          ]}
          value={blockOn}
          allowDeselect={false}
          onChange={(v) => setBlockOn(v === "warning" ? "warning" : "error")}
          disabled={locked}
          w={260}
        />
        <Title order={2} size="h4">
          Lint rules
        </Title>
        <Group align="end">
          <TagsInput label="Expected output labels" description="Exact labels every prompt must name (optional)" value={expected} onChange={setExpected} disabled={locked} w={360} />
          <NumberInput
            label="Context window if unknown (tokens)"
            min={1}
            value={contextTokens ?? ""}
            onChange={(v) => setContextTokens(v === "" ? null : Number(v))}
            disabled={locked}
            w={260}
          />
        </Group>
        <Table aria-label="Lint rules">
          <TableHead columns={["Rule", "Catches", "On", "Severity"]} />
          <Table.Tbody>
            {rules.map((rule) => (
              <Table.Tr key={rule.id}>
                <Table.Td>
                  <Text size="sm" fw={600}>
                    {rule.id}
                  </Text>
                  <Text size="xs">{rule.name}</Text>
                </Table.Td>
                <Table.Td>
                  <Text size="sm">{rule.catches}</Text>
                </Table.Td>
                <Table.Td>
                  <Switch
                    aria-label={`Run ${rule.id} ${rule.name}`}
                    checked={!disabled.has(rule.id)}
                    disabled={locked}
                    onChange={(e) => {
                      const next = new Set(disabled);
                      if (e.currentTarget.checked) next.delete(rule.id);
                      else next.add(rule.id);
                      setDisabled(next);
                    }}
                  />
                </Table.Td>
                <Table.Td>
                  <Select
                    aria-label={`Severity of ${rule.id}`}
                    data={SEVERITIES}
                    value={severity[rule.id]}
                    allowDeselect={false}
                    disabled={locked}
                    onChange={(v) => setSeverity({ ...severity, [rule.id]: (v ?? rule.defaultSeverity) as Severity })}
                    w={120}
                  />
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
        <ErrorNotice error={save.error} title="The settings were not saved" />
        {save.isSuccess && (
          <Text size="sm" role="status">
            Settings saved.
          </Text>
        )}
        {!locked && (
          <Group>
            <Button type="submit" loading={save.isPending}>
              Save settings
            </Button>
          </Group>
        )}
      </Stack>
    </form>
  );
}

export function LabelAndLintPolicy() {
  const { project, error, isLoading } = useProjectSettings();
  const rules = useQuery({ queryKey: ["lint-rules"], queryFn: () => unwrap(api.GET("/api/v1/lint/rules")) });
  if (error || rules.error) return <ErrorNotice error={error ?? rules.error} />;
  if (isLoading || !rules.data) return <Text size="sm">Loading settings…</Text>;
  if (!project) return <Text size="sm">The current project is not in your project list.</Text>;
  return (
    <Stack gap="xl">
      <PolicyForm key={project.id} settings={project.settings} rules={rules.data} />
      <ApprovalRulesForm key={`approvals-${project.id}`} settings={project.settings} />
    </Stack>
  );
}

type ApprovalSettings = Schemas["ApprovalSettingsIn"];
type Rollback = NonNullable<ApprovalSettings["rollback"]>;
type Role = Schemas["Role"];
type GateRow = { label: string; required: number; roles: Role[] };
// The roles that hold approval:review (the server refuses a rule naming another).
const REVIEWER_ROLES: Role[] = ["PromptOpsAdmin", "PromptEngineer", "QAAnalyst", "ComplianceOfficer"];
const DEFAULT_APPROVER_ROLES: Role[] = ["PromptEngineer", "PromptOpsAdmin"];
const ROLLBACK_MODES: { value: Rollback; label: string }[] = [
  { value: "previousVersion", label: "Back to a version the label held before: no approval needed" },
  { value: "sameAsForward", label: "The same approvals as any move" },
  { value: "admins", label: "Admins roll back at once; others need approvals" },
];

/** Approvals on gated labels (settings.approvals): each label with how many approvals it needs and from which
 * roles, and the rollback fast path. Saved on its own (the server merges top-level settings). */
function ApprovalRulesForm({ settings }: { settings: Record<string, unknown> }) {
  const canManage = useCan("project:manage");
  const client = useQueryClient();
  const saved = (settings.approvals ?? {}) as ApprovalSettings;
  const [rows, setRows] = useState<GateRow[]>(() =>
    Object.entries(saved.labels ?? {}).map(([label, rule]) => ({ label, required: rule.required ?? 1, roles: rule.roles ?? DEFAULT_APPROVER_ROLES })),
  );
  const [rollback, setRollback] = useState<Rollback>(saved.rollback ?? "previousVersion");
  const names = rows.map((r) => r.label.trim());
  const problem = names.some((n) => !/^[a-z][a-z0-9_-]*$/.test(n))
    ? "Each gated label needs a name: lowercase letters, digits, - and _"
    : new Set(names).size !== names.length
      ? "A label is listed twice"
      : rows.some((r) => r.roles.length === 0)
        ? "Each gated label needs at least one role whose approvals count"
        : null;
  const save = useMutation({
    mutationFn: () => {
      const approvals: ApprovalSettings = {
        labels: Object.fromEntries(rows.map((r) => [r.label.trim(), { required: r.required, roles: r.roles }])),
        rollback,
      };
      return unwrap(api.PATCH("/api/v1/projects/current", { body: { settings: { approvals } } }));
    },
    onSuccess: () => client.invalidateQueries({ queryKey: ["projects"] }),
  });
  const locked = !canManage;
  const update = (index: number, change: Partial<GateRow>) => {
    save.reset();
    setRows(rows.map((row, i) => (i === index ? { ...row, ...change } : row)));
  };
  const name = (row: GateRow, index: number) => row.label.trim() || `gated label ${index + 1}`;
  return (
    <form
      aria-label="Approval rules"
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        if (!problem) save.mutate();
      }}
    >
      <Stack>
        <Title order={2} size="h4">
          Approvals
        </Title>
        <Text size="sm">
          A move of a gated label becomes an approval request; the label moves once it has enough approvals from members of the chosen roles. Whoever asked
          for the move or wrote the version cannot approve it; an admin may override with a note.
        </Text>
        {rows.length === 0 ? (
          <Text size="sm">No label needs approvals.</Text>
        ) : (
          <Table aria-label="Labels that need approvals">
            <TableHead columns={["Label", "Approvals needed", "From roles", ""]} />
            <Table.Tbody>
              {rows.map((row, index) => (
                <Table.Tr key={index}>
                  <Table.Td>
                    <TextInput aria-label={`Name of gated label ${index + 1}`} value={row.label} maxLength={63} disabled={locked} onChange={(e) => update(index, { label: e.currentTarget.value })} w={180} />
                  </Table.Td>
                  <Table.Td>
                    <NumberInput
                      aria-label={`Approvals needed for ${name(row, index)}`}
                      min={1}
                      max={10}
                      allowDecimal={false}
                      clampBehavior="strict"
                      value={row.required}
                      disabled={locked}
                      onChange={(v) => update(index, { required: Math.min(10, Math.max(1, Number(v) || 1)) })}
                      w={120}
                    />
                  </Table.Td>
                  <Table.Td>
                    <MultiSelect
                      aria-label={`Roles whose approvals count for ${name(row, index)}`}
                      data={REVIEWER_ROLES}
                      value={row.roles}
                      disabled={locked}
                      onChange={(v) => update(index, { roles: v as Role[] })}
                      miw={280}
                    />
                  </Table.Td>
                  <Table.Td>
                    {!locked && (
                      <Button
                        size="compact-sm"
                        variant="default"
                        aria-label={`Remove ${name(row, index)}`}
                        onClick={() => {
                          save.reset();
                          setRows(rows.filter((_, i) => i !== index));
                        }}
                      >
                        Remove
                      </Button>
                    )}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
        {!locked && (
          <Group>
            <Button
              variant="default"
              disabled={rows.length >= 20}
              onClick={() => {
                save.reset();
                setRows([...rows, { label: rows.some((r) => r.label === "production") ? "" : "production", required: 1, roles: DEFAULT_APPROVER_ROLES }]);
              }}
            >
              Add a gated label
            </Button>
          </Group>
        )}
        <Select
          label="Rollback on a gated label"
          data={ROLLBACK_MODES}
          value={rollback}
          allowDeselect={false}
          disabled={locked}
          onChange={(v) => {
            save.reset();
            setRollback((v ?? "previousVersion") as Rollback);
          }}
          w={480}
        />
        {problem && rows.length > 0 && !locked && (
          <Text size="sm" fw={600} role="alert">
            {problem}
          </Text>
        )}
        <ErrorNotice error={save.error} title="The approval rules were not saved" />
        {save.isSuccess && (
          <Text size="sm" role="status">
            Approval rules saved.
          </Text>
        )}
        {!locked && (
          <Group>
            <Button type="submit" loading={save.isPending} disabled={Boolean(problem)}>
              Save approval rules
            </Button>
          </Group>
        )}
      </Stack>
    </form>
  );
}
