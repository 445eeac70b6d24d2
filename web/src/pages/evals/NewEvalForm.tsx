// The "New evaluation" form: prompt versions × models × one dataset × scorers (each with its value, threshold,
// weight and options), sent as one POST /api/v1/evals; the page then moves to the run to watch it work.
import {
  ActionIcon,
  Button,
  Checkbox,
  Fieldset,
  Group,
  MultiSelect,
  NumberInput,
  Select,
  Stack,
  Text,
  TextInput,
  Tooltip,
} from "@mantine/core";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useNavigate } from "react-router";
import { api, unwrap, type Schemas } from "../../api/client";
import { ErrorNotice } from "../../components/ErrorNotice";
import { newDraft, toSpec, useScorerTypes, type ScorerDraft, type ScorerType } from "./scorers";

type ModelTarget = Schemas["ModelTarget"];

function ScorerRow({
  index,
  draft,
  types,
  onChange,
  onRemove,
}: {
  index: number;
  draft: ScorerDraft;
  types: Map<string, ScorerType>;
  onChange: (draft: ScorerDraft) => void;
  onRemove: () => void;
}) {
  const known = types.get(draft.type);
  const n = index + 1;
  const set = (patch: Partial<ScorerDraft>) => onChange({ ...draft, ...patch });
  const valueLabel = known?.valueKind === "required" ? "Value" : "Value (optional)";
  const valueHint =
    known?.valueHint ?? (known?.valueKind === "reference" ? "empty: each case's expected output" : undefined);
  return (
    <Fieldset legend={`Scorer ${n}`} data-testid="scorer-row">
      <Stack gap="xs">
        <Group align="end">
          <Select
            label={`Scorer ${n} type`}
            data={[...types.keys()]}
            value={draft.type}
            onChange={(type) => type && onChange({ ...newDraft(type), name: draft.name, weight: draft.weight })}
            allowDeselect={false}
            searchable
            w={180}
          />
          <TextInput label={`Scorer ${n} name`} placeholder={draft.type} value={draft.name} onChange={(e) => set({ name: e.currentTarget.value })} w={140} />
          {known?.valueKind !== "none" && (
            <TextInput
              label={`Scorer ${n} ${valueLabel.toLowerCase()}`}
              description={valueHint}
              value={draft.value}
              onChange={(e) => set({ value: e.currentTarget.value })}
              w={260}
            />
          )}
          <TextInput
            label={`Scorer ${n} threshold`}
            placeholder={String(known?.defaultThreshold ?? 1)}
            value={draft.threshold}
            onChange={(e) => set({ threshold: e.currentTarget.value })}
            w={110}
          />
          <TextInput label={`Scorer ${n} weight`} value={draft.weight} onChange={(e) => set({ weight: e.currentTarget.value })} w={90} />
          <Checkbox label="Negate" checked={draft.negate} onChange={(e) => set({ negate: e.currentTarget.checked })} />
          <Tooltip label={`Remove scorer ${n}`}>
            <ActionIcon variant="default" aria-label={`Remove scorer ${n}`} onClick={onRemove}>
              ×
            </ActionIcon>
          </Tooltip>
        </Group>
        {known && (
          <Text size="sm">
            {known.description}
          </Text>
        )}
        {known && known.options.length > 0 && (
          <Group align="end">
            {known.options.map((option) =>
              option.kind === "boolean" ? (
                <Checkbox
                  key={option.name}
                  label={`${option.name} (${option.hint})`}
                  checked={draft.options[option.name] === true}
                  onChange={(e) => set({ options: { ...draft.options, [option.name]: e.currentTarget.checked } })}
                />
              ) : (
                <TextInput
                  key={option.name}
                  label={`Scorer ${n} option ${option.name}`}
                  description={option.hint}
                  value={String(draft.options[option.name] ?? "")}
                  onChange={(e) => set({ options: { ...draft.options, [option.name]: e.currentTarget.value } })}
                  w={300}
                />
              ),
            )}
          </Group>
        )}
      </Stack>
    </Fieldset>
  );
}

export function NewEvalForm({ initialPrompt }: { initialPrompt?: string }) {
  const navigate = useNavigate();
  const scorerTypes = useScorerTypes();
  const [name, setName] = useState("");
  const [prompt, setPrompt] = useState<string | null>(initialPrompt ?? null);
  const [versions, setVersions] = useState<string[]>([]);
  const [dataset, setDataset] = useState<string | null>(null);
  const [models, setModels] = useState<string[]>([]);
  const [scorers, setScorers] = useState<ScorerDraft[]>([]);
  const [passThreshold, setPassThreshold] = useState<number | string>(1);
  const [concurrency, setConcurrency] = useState<number | string>(4);
  const [limit, setLimit] = useState<number | string>("");
  const [formError, setFormError] = useState<string | null>(null);

  const prompts = useQuery({
    queryKey: ["prompts", "all-names"],
    queryFn: () => unwrap(api.GET("/api/v1/prompts", { params: { query: { limit: 200 } } })),
  });
  const promptVersions = useQuery({
    queryKey: ["prompt", prompt, "versions"],
    queryFn: () => unwrap(api.GET("/api/v1/prompts/{name}/versions", { params: { path: { name: prompt! }, query: { limit: 200 } } })),
    enabled: Boolean(prompt),
  });
  const datasets = useQuery({
    queryKey: ["datasets", ""],
    queryFn: () => unwrap(api.GET("/api/v1/datasets", { params: { query: { limit: 200 } } })),
  });
  const catalog = useQuery({ queryKey: ["models"], queryFn: () => unwrap(api.GET("/api/v1/models")) });

  const start = useMutation({
    mutationFn: (body: Schemas["EvalRunIn"]) => unwrap(api.POST("/api/v1/evals", { body })),
    onSuccess: (run) => navigate(`/evals/${run.id}`),
  });

  function submit() {
    setFormError(null);
    let specs;
    try {
      specs = scorers.map((draft) => toSpec(draft, scorerTypes));
    } catch (error) {
      return setFormError((error as Error).message);
    }
    const targets: ModelTarget[] = models.map((m) => {
      const [provider, ...rest] = m.split("/");
      return { provider, model: rest.join("/"), params: {} };
    });
    start.mutate({
      name,
      prompts: versions,
      dataset: dataset ?? "",
      models: targets,
      // no scorers: the server's default (a label match against the cases' expected outputs)
      ...(specs.length ? { scorers: specs } : {}),
      passThreshold: Number(passThreshold),
      concurrency: Number(concurrency),
      limit: limit === "" ? null : Number(limit),
    });
  }

  const versionOptions = (promptVersions.data?.items ?? []).map((v) => ({
    value: `${v.promptName}@${v.version}`,
    label: `v${v.version}${v.labels.length ? ` (${v.labels.join(", ")})` : ""}${v.commitMessage ? ` · ${v.commitMessage}` : ""}`,
  }));
  return (
    <Stack>
      <ErrorNotice error={prompts.error ?? datasets.error ?? catalog.error ?? promptVersions.error} />
      <TextInput label="Evaluation name" description="empty: versions and dataset" value={name} onChange={(e) => setName(e.currentTarget.value)} />
      <Group align="start" grow>
        <Select
          label="Prompt"
          required
          searchable
          data={(prompts.data?.items ?? []).map((p) => p.name)}
          value={prompt}
          onChange={(value) => {
            setPrompt(value);
            setVersions([]);
          }}
        />
        <MultiSelect
          label="Versions"
          required
          description="each runs on every case"
          data={versionOptions}
          value={versions}
          onChange={setVersions}
          disabled={!prompt}
        />
      </Group>
      <Group align="start" grow>
        <Select
          label="Dataset"
          required
          searchable
          data={(datasets.data?.items ?? []).map((d) => ({ value: d.name, label: `${d.name} (v${d.latestVersion}, ${d.latest?.caseCount ?? 0} cases)` }))}
          value={dataset}
          onChange={setDataset}
        />
        <MultiSelect
          label="Models"
          description="empty: each version's own model"
          searchable
          data={[...new Set((catalog.data ?? []).map((m) => `${m.provider}/${m.model}`))]}
          value={models}
          onChange={setModels}
        />
      </Group>
      <Group align="start">
        <NumberInput label="Pass threshold" description="weighted score a case needs" min={0} max={1} step={0.05} decimalScale={2} value={passThreshold} onChange={setPassThreshold} w={170} />
        <NumberInput label="Concurrency" min={1} max={64} value={concurrency} onChange={setConcurrency} w={130} />
        <NumberInput label="Case limit" description="empty: every case" min={1} value={limit} onChange={setLimit} w={130} />
      </Group>
      <Stack gap="xs">
        <Text fw={600}>Scorers</Text>
        {scorers.length === 0 && (
          <Text size="sm">No scorer chosen: each case's output is matched against its expected label (the server's default).</Text>
        )}
        {scorers.map((draft, index) => (
          <ScorerRow
            key={index}
            index={index}
            draft={draft}
            types={scorerTypes}
            onChange={(next) => setScorers(scorers.map((s, i) => (i === index ? next : s)))}
            onRemove={() => setScorers(scorers.filter((_, i) => i !== index))}
          />
        ))}
        <Group>
          <Button variant="default" onClick={() => setScorers([...scorers, newDraft()])}>
            Add scorer
          </Button>
        </Group>
      </Stack>
      {formError && <ErrorNotice error={new Error(formError)} title="Check the scorers" />}
      <ErrorNotice error={start.error} title="The evaluation was not started" />
      <Group>
        <Button onClick={submit} loading={start.isPending} disabled={versions.length === 0 || !dataset}>
          Start evaluation
        </Button>
      </Group>
    </Stack>
  );
}
