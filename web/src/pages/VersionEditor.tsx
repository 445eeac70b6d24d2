// The editor for a new version: template or chat messages with highlighting and variable completion,
// typed variable declarations, model config from the catalog, a live preview with sample values
// (POST /api/v1/render) and lint findings as you type (POST /api/v1/lint), both debounced.
import {
  ActionIcon,
  Badge,
  Button,
  Checkbox,
  Code,
  Grid,
  Group,
  NumberInput,
  SegmentedControl,
  Select,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { useDebouncedValue } from "@mantine/hooks";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useState } from "react";
import { useBlocker } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { SEVERITY_COLOR } from "../colors";
import { ErrorNotice } from "../components/ErrorNotice";
import { TemplateEditor } from "../components/TemplateEditor";
import { TableHead } from "../components/TableHead";
import type { SavedState } from "../paths";
import { usedNames } from "../templateNames";

type Version = Schemas["VersionOut"];
type Variable = { name: string; type: string; required: boolean; default: string; description: string };
type Message = { role: string; content: string };

const TYPES = ["string", "number", "integer", "boolean", "array", "object", "any"];
const ROLES = ["system", "user", "assistant", "developer"];

function fromVersion(version: Version) {
  return {
    kind: version.kind as "text" | "chat",
    template: version.template ?? "",
    messages: (version.messages ?? []).map((m) => ({ role: String(m.role), content: String(m.content) })),
    variables: version.variables.map((v) => ({
      name: String(v.name),
      type: String(v.type ?? "string"),
      required: v.required !== false,
      default: v.default === null || v.default === undefined ? "" : JSON.stringify(v.default),
      description: String(v.description ?? ""),
    })),
    provider: (version.modelConfig.provider as string | undefined) ?? null,
    model: (version.modelConfig.model as string | undefined) ?? null,
    params: (version.modelConfig.params as Record<string, unknown> | undefined) ?? {},
  };
}

function parseDefault(variable: Variable): unknown {
  if (variable.default === "") return null;
  try {
    return JSON.parse(variable.default);
  } catch {
    return variable.default;
  }
}

export default function VersionEditor({ name, base, onSaved }: { name: string; base: Version; onSaved: (saved: SavedState) => void }) {
  const start = useMemo(() => fromVersion(base), [base]);
  const [kind, setKind] = useState(start.kind);
  const [template, setTemplate] = useState(start.template);
  const [messages, setMessages] = useState<Message[]>(start.messages.length ? start.messages : [{ role: "user", content: "" }]);
  const [variables, setVariables] = useState<Variable[]>(start.variables);
  const [model, setModel] = useState<string | null>(start.provider && start.model ? `${start.provider}/${start.model}` : null);
  const [temperature, setTemperature] = useState<number | string>((start.params.temperature as number | undefined) ?? "");
  const [samples, setSamples] = useState<Record<string, string>>({});
  const [message, setMessage] = useState("");
  const [saved, setSaved] = useState(false);
  const client = useQueryClient();

  const catalog = useQuery({ queryKey: ["models"], queryFn: () => unwrap(api.GET("/api/v1/models")) });
  const modelOptions = (catalog.data ?? []).map((m) => ({ value: `${m.provider}/${m.model}`, label: `${m.provider}/${m.model}` }));

  const dirty =
    !saved &&
    (kind !== start.kind ||
      template !== start.template ||
      JSON.stringify(messages) !== JSON.stringify(start.messages.length ? start.messages : [{ role: "user", content: "" }]) ||
      JSON.stringify(variables) !== JSON.stringify(start.variables) ||
      message !== "");

  // Unsaved-change guard: leaving the page in the app asks first; closing the tab asks the browser to warn.
  const blocker = useBlocker(({ currentLocation, nextLocation }) => dirty && currentLocation.pathname !== nextLocation.pathname);
  useEffect(() => {
    if (blocker.state === "blocked") {
      if (window.confirm("Leave without saving this version?")) blocker.proceed();
      else blocker.reset();
    }
  }, [blocker]);
  useEffect(() => {
    const warn = (event: BeforeUnloadEvent) => {
      if (dirty) event.preventDefault();
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty]);

  const [provider, modelName] = model ? [model.split("/")[0], model.split("/").slice(1).join("/")] : [null, null];
  const body = {
    kind,
    template: kind === "text" ? template : null,
    messages: kind === "chat" ? (messages as Schemas["MessageIn"][]) : null,
    variables: variables
      .filter((v) => v.name)
      .map((v) => ({ name: v.name, type: v.type as Schemas["VariableIn"]["type"], required: v.required, default: parseDefault(v), description: v.description })),
    modelConfig: { provider, model: modelName, params: temperature === "" ? {} : { temperature: Number(temperature) } },
    commitMessage: message,
  };
  const [debounced] = useDebouncedValue(body, 400);
  const key = JSON.stringify(debounced);
  const lint = useQuery({
    queryKey: ["lint", key],
    queryFn: () => unwrap(api.POST("/api/v1/lint", { body: { ...debounced, name } })),
  });
  const renderVariables = Object.fromEntries(
    Object.entries(samples).filter(([, value]) => value !== "").map(([k, value]) => [k, value]),
  );
  const [debouncedSamples] = useDebouncedValue(renderVariables, 400);
  const preview = useQuery({
    queryKey: ["preview", key, JSON.stringify(debouncedSamples)],
    queryFn: () => unwrap(api.POST("/api/v1/render", { body: { ...debounced, renderVariables: debouncedSamples } })),
    retry: false,
  });

  const save = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/prompts/{name}/versions", { params: { path: { name } }, body })),
    onSuccess: async (created) => {
      setSaved(true);
      await client.invalidateQueries({ queryKey: ["prompt", name] });
      onSaved({ name: created.prompt.name, version: created.version.version, nearDuplicates: created.nearDuplicates ?? [] });
    },
  });

  const declared = variables.map((v) => v.name).filter(Boolean);
  const undeclared = usedNames(kind === "text" ? [template] : messages.map((m) => m.content)).filter((n) => !declared.includes(n));
  const setVariable = (index: number, patch: Partial<Variable>) =>
    setVariables(variables.map((v, i) => (i === index ? { ...v, ...patch } : v)));

  return (
    <Grid>
      <Grid.Col span={{ base: 12, md: 7 }}>
        <Stack>
          <SegmentedControl
            aria-label="Kind"
            value={kind}
            onChange={(value) => setKind(value as "text" | "chat")}
            data={[
              { value: "text", label: "Text" },
              { value: "chat", label: "Chat" },
            ]}
            w={200}
          />
          {kind === "text" ? (
            <TemplateEditor label="Template" value={template} onChange={setTemplate} variables={declared} placeholder="Write the prompt; {{ variable }} inserts a value" />
          ) : (
            messages.map((m, index) => (
              <Stack key={index} gap={4}>
                <Group>
                  <Select aria-label={`Role of message ${index + 1}`} data={ROLES} value={m.role} allowDeselect={false} w={140} onChange={(role) => setMessages(messages.map((x, i) => (i === index ? { ...x, role: role ?? "user" } : x)))} />
                  <ActionIcon variant="default" aria-label={`Remove message ${index + 1}`} disabled={messages.length === 1} onClick={() => setMessages(messages.filter((_, i) => i !== index))}>
                    ✕
                  </ActionIcon>
                </Group>
                <TemplateEditor label={`Message ${index + 1}`} value={m.content} variables={declared} onChange={(content) => setMessages(messages.map((x, i) => (i === index ? { ...x, content } : x)))} />
              </Stack>
            ))
          )}
          {kind === "chat" && (
            <Button variant="default" onClick={() => setMessages([...messages, { role: "user", content: "" }])} w={160}>
              Add a message
            </Button>
          )}
          <Title order={2} size="h4">
            Variables
          </Title>
          {undeclared.length > 0 && (
            <Group gap="xs">
              <Text size="sm">Used but not declared:</Text>
              {undeclared.map((n) => (
                <Button key={n} size="compact-sm" variant="light" onClick={() => setVariables([...variables, { name: n, type: "string", required: true, default: "", description: "" }])}>
                  Declare {n}
                </Button>
              ))}
            </Group>
          )}
          <Table aria-label="Variables">
            <TableHead columns={["Name", "Type", "Required", "Default (JSON)", "Sample value", ""]} />
            <Table.Tbody>
              {variables.map((v, index) => (
                <Table.Tr key={index}>
                  <Table.Td>
                    <TextInput aria-label={`Variable ${index + 1} name`} value={v.name} onChange={(e) => setVariable(index, { name: e.currentTarget.value })} />
                  </Table.Td>
                  <Table.Td>
                    <Select aria-label={`Variable ${index + 1} type`} data={TYPES} value={v.type} allowDeselect={false} onChange={(type) => setVariable(index, { type: type ?? "string" })} w={110} />
                  </Table.Td>
                  <Table.Td>
                    <Checkbox aria-label={`Variable ${index + 1} required`} checked={v.required} onChange={(e) => setVariable(index, { required: e.currentTarget.checked })} />
                  </Table.Td>
                  <Table.Td>
                    <TextInput aria-label={`Variable ${index + 1} default`} value={v.default} onChange={(e) => setVariable(index, { default: e.currentTarget.value })} />
                  </Table.Td>
                  <Table.Td>
                    <TextInput aria-label={`Sample value for ${v.name || `variable ${index + 1}`}`} value={samples[v.name] ?? ""} onChange={(e) => setSamples({ ...samples, [v.name]: e.currentTarget.value })} />
                  </Table.Td>
                  <Table.Td>
                    <ActionIcon variant="default" aria-label={`Remove variable ${index + 1}`} onClick={() => setVariables(variables.filter((_, i) => i !== index))}>
                      ✕
                    </ActionIcon>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          <Button variant="default" w={160} onClick={() => setVariables([...variables, { name: "", type: "string", required: true, default: "", description: "" }])}>
            Add a variable
          </Button>
          <Title order={2} size="h4">
            Model
          </Title>
          <Group>
            <Select label="Model" placeholder="From the catalog" searchable clearable data={modelOptions} value={model} onChange={setModel} w={320} />
            <NumberInput label="Temperature" min={0} max={2} step={0.1} decimalScale={2} value={temperature} onChange={setTemperature} w={140} />
          </Group>
          <TextInput label="Commit message" value={message} onChange={(e) => setMessage(e.currentTarget.value)} />
          <ErrorNotice error={save.error} title="The version was not saved" />
          <Group>
            <Button onClick={() => save.mutate()} loading={save.isPending}>
              Save version
            </Button>
            {dirty && <Text size="sm">Unsaved changes</Text>}
          </Group>
        </Stack>
      </Grid.Col>
      <Grid.Col span={{ base: 12, md: 5 }}>
        <Stack>
          <Title order={2} size="h4">
            Preview
          </Title>
          {preview.error ? (
            <ErrorNotice error={preview.error} title="Cannot render yet" />
          ) : preview.data?.text != null ? (
            <Code block aria-label="Rendered prompt">{preview.data.text}</Code>
          ) : (
            (preview.data?.messages ?? []).map((m, index) => (
              <Code block key={index} aria-label={`Rendered message ${index + 1}`}>
                {`[${String(m.role)}]\n${String(m.content)}`}
              </Code>
            ))
          )}
          <Title order={2} size="h4">
            Lint
          </Title>
          <ErrorNotice error={lint.error} />
          {lint.data && lint.data.findings.length === 0 && <Text size="sm">No findings.</Text>}
          {lint.data?.findings.map((f, index) => (
            <Group key={index} gap="xs" wrap="nowrap" align="start" data-testid="lint-finding">
              <Badge color={SEVERITY_COLOR[f.severity] ?? "gray.7"}>{f.severity}</Badge>
              <Text size="sm">
                {f.rule} {f.name}: {f.message}
                {f.line ? ` (line ${f.line})` : ""}
              </Text>
            </Group>
          ))}
        </Stack>
      </Grid.Col>
    </Grid>
  );
}
