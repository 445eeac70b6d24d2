// The playground: one prompt version against 1–4 models side by side, answers streamed token by token (SSE),
// tokens/cost/latency per column, stop, re-run, and each answer one click from its run or a dataset case.
// Deep link: /playground?prompt=<name>&version=<n> or /playground?prompt=<name>&label=<label>.
import { Alert, Anchor, Button, Code, Group, Loader, Select, SimpleGrid, Stack, Text, Textarea, Title } from "@mantine/core";
import { useDebouncedValue } from "@mantine/hooks";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useEffect, useMemo, useReducer, useRef, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { ApiError, api, unwrap, type Schemas } from "../api/client";
import { streamPlayground } from "../api/sse";
import { useCan, useMe } from "../auth";
import { ErrorNotice } from "../components/ErrorNotice";
import { promptUrl } from "../paths";
import { ColumnForm, useModelOptions } from "./playground/ColumnForm";
import { MAX_COLUMNS, columnFrom, copyColumn, describeColumn, outputsReducer, targetOf, type ColumnConfig } from "./playground/model";
import { ResultColumn } from "./playground/ResultColumn";
import { usedNames } from "../templateNames";

type Version = Schemas["VersionOut"];
type Declared = { name: string; type: string; required: boolean; description: string; default: unknown };

/** The version's declared variables, then the names its template uses without declaring them. */
export function variablesOf(version: Version): Declared[] {
  const declared: Declared[] = version.variables.map((v) => ({
    name: String(v.name),
    type: String(v.type ?? "string"),
    required: v.required !== false,
    description: String(v.description ?? ""),
    default: v.default,
  }));
  const texts = [version.template ?? "", ...(version.messages ?? []).map((m) => String(m.content ?? ""))];
  const known = new Set(declared.map((v) => v.name));
  const used = usedNames(texts).filter((name) => !known.has(name));
  return [...declared, ...used.map((name) => ({ name, type: "string", required: true, description: "Used in the template, not declared", default: undefined }))];
}

/** The value sent for a variable: typed ones are read as JSON when they parse (the server checks the type). */
function valueOf(variable: Declared, text: string): unknown {
  if (variable.type === "string") return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function VersionPicker({ name, choice, onChoice }: { name: string; choice: string; onChoice: (choice: string) => void }) {
  const versions = useQuery({
    queryKey: ["prompt", name, "versions"],
    queryFn: () => unwrap(api.GET("/api/v1/prompts/{name}/versions", { params: { path: { name }, query: { limit: 200 } } })),
  });
  const labels = useQuery({
    queryKey: ["prompt", name, "labels"],
    queryFn: () => unwrap(api.GET("/api/v1/prompts/{name}/labels", { params: { path: { name } } })),
  });
  const data = [
    { value: "latest", label: "latest" },
    ...(labels.data ?? []).map((l) => ({ value: `label:${l.name}`, label: `${l.name} → v${l.version}` })),
    ...(versions.data?.items ?? []).map((v) => ({ value: String(v.version), label: `v${v.version}${v.commitMessage ? ` · ${v.commitMessage}` : ""}` })),
  ];
  if (!data.some((d) => d.value === choice)) data.push({ value: choice, label: choice.replace(/^label:/, "") });
  return <Select label="Version or label" data={data} value={choice} allowDeselect={false} onChange={(v) => v && onChoice(v)} w={280} />;
}

function PromptSelect({ value, onChange }: { value: string | null; onChange: (name: string | null) => void }) {
  const [search, setSearch] = useState(value ?? "");
  const [debounced] = useDebouncedValue(search, 250);
  const q = debounced && debounced !== value ? debounced : undefined;
  const prompts = useQuery({
    queryKey: ["prompts", "picker", q],
    queryFn: () => unwrap(api.GET("/api/v1/prompts", { params: { query: { q, limit: 100 } } })),
    placeholderData: keepPreviousData,
  });
  const names = (prompts.data?.items ?? []).map((p) => p.name);
  if (value && !names.includes(value)) names.unshift(value);
  return (
    <Stack gap={4}>
      <Select
        label="Prompt"
        placeholder="Search prompts"
        searchable
        searchValue={search}
        onSearchChange={setSearch}
        nothingFoundMessage={prompts.isFetching ? "Searching…" : "No prompt matches"}
        data={names}
        value={value}
        onChange={onChange}
        w={340}
      />
      <ErrorNotice error={prompts.error} />
    </Stack>
  );
}

function Variables({ variables, values, onChange }: { variables: Declared[]; values: Record<string, string>; onChange: (name: string, value: string) => void }) {
  if (variables.length === 0) return <Text size="sm">This version takes no variables.</Text>;
  return (
    <SimpleGrid cols={{ base: 1, md: 2 }}>
      {variables.map((v) => (
        <Textarea
          key={v.name}
          label={v.name}
          description={[v.type !== "string" && `${v.type} (JSON)`, v.description].filter(Boolean).join(" · ") || undefined}
          placeholder={v.default === undefined || v.default === null ? undefined : `default: ${JSON.stringify(v.default)}`}
          withAsterisk={v.required && v.default === undefined}
          autosize
          minRows={1}
          maxRows={8}
          value={values[v.name] ?? ""}
          onChange={(event) => onChange(v.name, event.currentTarget.value)}
        />
      ))}
    </SimpleGrid>
  );
}

type Ran = { prompt: string; columns: ColumnConfig[] };

export default function PlaygroundPage() {
  const canRun = useCan("playground:run");
  const me = useMe();
  return (
    <Stack>
      <Title order={1} size="h2">
        Playground
      </Title>
      {canRun ? (
        <Playground />
      ) : (
        <Alert color="gray" title="Not available to your role">
          Your role ({me.role}) does not have the playground:run permission, so it cannot call models here. Ask a project
          admin for the PromptEngineer role, or browse recorded calls under{" "}
          <Anchor component={Link} to="/runs">
            Runs
          </Anchor>
          .
        </Alert>
      )}
    </Stack>
  );
}

function Playground() {
  const [params, setParams] = useSearchParams();
  const name = params.get("prompt");
  const choice = params.get("label") ? `label:${params.get("label")}` : (params.get("version") ?? "latest");
  const resolved = useQuery({
    queryKey: ["prompt", name, "resolve", choice],
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/prompts/{name}", {
          params: {
            path: { name: name! },
            query: choice.startsWith("label:") ? { label: choice.slice(6) } : choice === "latest" ? {} : { version: Number(choice) },
          },
        }),
      ),
    enabled: !!name,
  });
  const version = resolved.data?.version;
  const variables = version ? variablesOf(version) : [];
  const [values, setValues] = useState<Record<string, string>>({});
  const [edited, setEdited] = useState<ColumnConfig[] | null>(null);
  // Until the columns are edited they follow the version's model config.
  const initial = useMemo(() => [columnFrom(version?.modelConfig)], [version]);
  const columns = edited ?? initial;
  const options = useModelOptions(columns.map((c) => c.model));
  const [outputs, dispatch] = useReducer(outputsReducer, []);
  const [ran, setRan] = useState<Ran | null>(null);
  const [rendered, setRendered] = useState<Record<string, unknown> | null>(null);
  const [problem, setProblem] = useState<unknown>(null);
  const [running, setRunning] = useState(false);
  const controller = useRef<AbortController | null>(null);
  useEffect(() => () => controller.current?.abort(), []);

  function choose(next: Record<string, string | null>) {
    const merged = new URLSearchParams(params);
    for (const [key, value] of Object.entries(next)) {
      if (value) merged.set(key, value);
      else merged.delete(key);
    }
    setParams(merged, { replace: true });
  }

  const targets = columns.map(targetOf);
  const invalid = targets.find((t): t is string => typeof t === "string");
  const missing = variables.filter((v) => v.required && v.default === undefined && !(values[v.name] ?? "").length).map((v) => v.name);

  async function run() {
    if (!version || invalid) return;
    const abort = new AbortController();
    controller.current = abort;
    const prompt = `${version.promptName}@${version.version}`;
    const sent = Object.fromEntries(variables.filter((v) => (values[v.name] ?? "") !== "").map((v) => [v.name, valueOf(v, values[v.name])]));
    setRan({ prompt, columns });
    setProblem(null);
    setRendered(null);
    setRunning(true);
    dispatch({ type: "reset", count: columns.length });
    try {
      for await (const event of streamPlayground({ prompt, variables: sent, models: targets as Schemas["ModelTarget"][] }, abort.signal)) {
        if (event.event === "start") setRendered(event.data.rendered);
        if (event.event === "error") setProblem(new ApiError(event.data.status ?? 500, event.data, event.data.requestId ?? null));
        dispatch(event);
      }
    } catch (error) {
      if (!abort.signal.aborted) setProblem(error);
    } finally {
      abort.abort(); // whatever ended the loop, the request is over: nothing keeps the server generating
      dispatch({ type: "finished" });
      setRunning(false);
      controller.current = null;
    }
  }

  const setColumn = (index: number, column: ColumnConfig) => setEdited(columns.map((c, i) => (i === index ? column : c)));
  return (
    <Stack>
      <Group align="end">
        <PromptSelect value={name} onChange={(next) => choose({ prompt: next, version: null, label: null })} />
        {name && (
          <VersionPicker
            name={name}
            choice={choice}
            onChoice={(next) =>
              choose(next.startsWith("label:") ? { label: next.slice(6), version: null } : { version: next === "latest" ? null : next, label: null })
            }
          />
        )}
        {version && (
          <Text size="sm" pb={8}>
            <Anchor component={Link} to={promptUrl(version.promptName)}>
              {version.promptName} v{version.version}
            </Anchor>{" "}
            · {version.kind}
          </Text>
        )}
      </Group>
      {!name && <Text>Choose a prompt to try it against one to four models side by side.</Text>}
      {resolved.isLoading && <Loader role="status" aria-label="Loading the prompt" />}
      <ErrorNotice error={resolved.error} />
      {version && (
        <>
          <Title order={2} size="h4">
            Variables
          </Title>
          <Variables variables={variables} values={values} onChange={(key, value) => setValues({ ...values, [key]: value })} />
          <Group justify="space-between" align="end">
            <Title order={2} size="h4">
              Models
            </Title>
            <Button
              variant="default"
              size="xs"
              disabled={columns.length >= MAX_COLUMNS}
              onClick={() => setEdited([...columns, copyColumn(columns[columns.length - 1])])}
            >
              Add column
            </Button>
          </Group>
          <SimpleGrid cols={{ base: 1, sm: 2, lg: columns.length }}>
            {columns.map((column, index) => (
              <ColumnForm
                key={column.id}
                index={index}
                column={column}
                options={options}
                onChange={(next) => setColumn(index, next)}
                onRemove={columns.length > 1 ? () => setEdited(columns.filter((_, i) => i !== index)) : null}
              />
            ))}
          </SimpleGrid>
          <Group>
            {running ? (
              <Button color="red.9" onClick={() => controller.current?.abort()}>
                Stop
              </Button>
            ) : (
              <Button onClick={() => void run()} disabled={!!invalid || missing.length > 0}>
                {ran ? "Re-run" : "Run"}
              </Button>
            )}
            {!running && missing.length > 0 && <Text size="sm">Fill in: {missing.join(", ")}.</Text>}
            {!running && invalid && <Text size="sm">{invalid}</Text>}
          </Group>
        </>
      )}
      <ErrorNotice error={problem} title="The run failed" />
      {ran && outputs.length > 0 && (
        <>
          <Title order={2} size="h4">
            Answers from {ran.prompt}
          </Title>
          <SimpleGrid cols={{ base: 1, sm: 2, lg: ran.columns.length }}>
            {ran.columns.map((column, index) => (
              <ResultColumn key={column.id} index={index} model={column.model} settings={describeColumn(column)} output={outputs[index]} />
            ))}
          </SimpleGrid>
        </>
      )}
      {rendered && (
        <Stack gap={4}>
          <Title order={2} size="h4">
            Rendered prompt
          </Title>
          <Code block aria-label="Rendered prompt" tabIndex={0} mah={240} style={{ overflow: "auto" }}>
            {typeof rendered.text === "string" ? rendered.text : JSON.stringify(rendered.messages, null, 2)}
          </Code>
        </Stack>
      )}
    </Stack>
  );
}
