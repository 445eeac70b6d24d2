// The "Refine" tab: a prompt version + reviewer notes -> an improved version (seed 004 POST /api/prompt/refine).
// First a dry run: the proposal, why it won and its diff from the version it refines, with nothing saved; the
// reviewer may edit the text, then saves it (`accept`: no model call) as a draft version no label points at;
// only a confirmed label move ships it.
import { Anchor, Badge, Button, Checkbox, Group, Loader, Stack, Table, Text, TextInput, Textarea, Title } from "@mantine/core";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router";
import { api, unwrap, type Schemas } from "../../api/client";
import { OK_COLOR } from "../../colors";
import { DiffView } from "../../components/DiffView";
import { ErrorNotice } from "../../components/ErrorNotice";
import { TableHead } from "../../components/TableHead";
import { promptUrl } from "../../paths";
import { modelTarget, score } from "./model";
import { PromoteLabel } from "./PromoteLabel";

type Strategy = NonNullable<Schemas["PromptRefineRequest"]["strategies"]>[number];
const STRATEGIES: { value: Strategy; label: string }[] = [
  { value: "tighten-format", label: "Tighten the output format (template and model parameters)" },
  { value: "counter-examples", label: "Add failed cases as worked examples (needs a dataset)" },
  { value: "critique-and-edit", label: "Let the model critique and rewrite the prompt (slow on small models)" },
  { value: "apply-notes", label: "Add the notes as an instruction" },
];

/** Why the proposal won: the rationale and every strategy with its note and scores. */
function Reasons({ result }: { result: Schemas["PromptRefineResult"] }) {
  return (
    <>
      <Title order={3} size="h5">
        Why this version
      </Title>
      <Text size="sm" style={{ whiteSpace: "pre-wrap" }}>
        {result.rationale}
      </Text>
      <Table aria-label="Strategies considered">
        <TableHead columns={["Strategy", "Applied", "Note", "Score", "Pass rate"]} />
        <Table.Tbody>
          {(result.candidates ?? []).map((c) => (
            <Table.Tr key={c.strategy}>
              <Table.Td>
                {c.strategy}{" "}
                {c.strategy === result.strategy && (
                  <Badge size="sm" color={OK_COLOR}>
                    chosen
                  </Badge>
                )}
              </Table.Td>
              <Table.Td>{c.applied ? "yes" : "no"}</Table.Td>
              <Table.Td>{c.note}</Table.Td>
              <Table.Td>{score(c.score)}</Table.Td>
              <Table.Td>{score(c.passRate)}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </>
  );
}

function Refined({ result }: { result: Schemas["PromptRefineResult"] }) {
  const versionId = result.versionId ?? "";
  const prompt = useQuery({
    queryKey: ["prompt-by-id", result.promptId],
    queryFn: () => unwrap(api.GET("/api/v1/prompts/{name}", { params: { path: { name: result.promptId } } })),
  });
  const name = prompt.data?.prompt.name ?? result.promptId;
  const diff = useQuery({
    queryKey: ["prompt", name, "diff", result.parentId, versionId],
    queryFn: () => unwrap(api.GET("/api/v1/prompts/{name}/diff", { params: { path: { name }, query: { from: result.parentId, to: versionId } } })),
    enabled: prompt.isSuccess,
  });
  return (
    <Stack>
      <Title order={2} size="h4">
        Proposed: {name} v{result.version}
      </Title>
      <Text>
        Saved as a draft version v{result.version} that no label points at. Review the change below; moving a label ships it.{" "}
        <Anchor component={Link} to={promptUrl(name)}>
          Open {name}
        </Anchor>
      </Text>
      <Title order={3} size="h5">
        Change from the version it refined
      </Title>
      <ErrorNotice error={prompt.error ?? diff.error} />
      {diff.isLoading && <Loader size="sm" role="status" aria-label="Loading the diff" />}
      {diff.data && <DiffView diff={diff.data} />}
      {prompt.isSuccess && (
        <PromoteLabel
          promptName={name}
          versionId={versionId}
          what={`v${result.version}`}
          baseVersionId={result.parentId}
          buttonLabel="Ship the refined version"
          defaultReason={`Refined from notes (${result.strategy})`}
        />
      )}
      <Reasons result={result} />
    </Stack>
  );
}

type Result = Schemas["PromptRefineResult"];

/** The dry run's answer: its diff and reasons, the text (editable), and "Save" which sends it back as `accept`. */
function Proposal({ result, request }: { result: Result; request: Schemas["PromptRefineRequest"] }) {
  const [text, setText] = useState(result.prompt);
  const params = (result.modelConfig as { params?: Record<string, unknown> }).params ?? null;
  const save = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/prompt/refine", {
          // the version reviewed, by id: a version saved meanwhile (or a moved label) does not change what is refined
          body: { prompt: result.parentId, feedback: request.feedback, accept: { template: text, strategy: result.strategy, params } },
        }),
      ),
  });
  if (save.data) return <Refined result={save.data} />;
  const diff: Schemas["DiffOut"] = {
    from: "current",
    to: "proposed",
    fromVersionId: result.parentId,
    toVersionId: "",
    identical: false,
    kindChanged: false,
    template: result.diff,
    variables: [],
    modelConfig: ((result.deltas as { modelConfig?: Record<string, unknown>[] }).modelConfig ?? []),
    responseSchema: [],
    metadata: [],
  };
  return (
    <Stack>
      <Title order={2} size="h4">
        Proposed change (not saved yet)
      </Title>
      <Text size="sm">Review the diff from the version it refines. You may edit the text before saving; nothing is saved until you do.</Text>
      <DiffView diff={diff} />
      <Textarea label="Proposed template" autosize minRows={4} maxRows={16} styles={{ input: { fontFamily: "monospace" } }} value={text} onChange={(e) => setText(e.currentTarget.value)} />
      <ErrorNotice error={save.error} title="The version was not saved" />
      <Group>
        <Button onClick={() => save.mutate()} loading={save.isPending} disabled={!text.trim()}>
          Save as a draft version
        </Button>
      </Group>
      <Reasons result={result} />
    </Stack>
  );
}

export function RefineTab({ prompt: initialPrompt }: { prompt: string }) {
  const [prompt, setPrompt] = useState(initialPrompt);
  const [feedback, setFeedback] = useState("");
  const [useFeedback, setUseFeedback] = useState(false);
  const [dataset, setDataset] = useState("");
  const [strategies, setStrategies] = useState<string[]>(STRATEGIES.map((s) => s.value));
  const [model, setModel] = useState("");
  const refine = useMutation({
    mutationFn: async () => {
      const request: Schemas["PromptRefineRequest"] = {
        prompt: prompt.trim(),
        feedback,
        useFeedback,
        dataset: dataset.trim() || null,
        strategies: strategies as Strategy[],
        model: modelTarget(model),
      };
      const result = await unwrap(api.POST("/api/prompt/refine", { body: { ...request, dryRun: true } }));
      return { request, result };
    },
  });
  return (
    <Stack>
      <Stack component="form" onSubmit={(e) => { e.preventDefault(); refine.mutate(); }}>
        <Text size="sm" c="dimmed">
          Proposes an improved version from reviewer notes (and, optionally, the version&apos;s feedback and a dataset to test on). You see the proposal and its diff first; nothing is saved until you save it, as a draft version without a label, and nothing ships until a label moves.
        </Text>
        <Group align="end">
          <TextInput label="Prompt" description="name, name@label or name@3" required value={prompt} onChange={(e) => setPrompt(e.currentTarget.value)} w={260} />
          <TextInput label="Test on dataset" description="optional: name or name@version" value={dataset} onChange={(e) => setDataset(e.currentTarget.value)} w={240} />
          <TextInput label="Model" description="provider/model; empty: the prompt's own" value={model} onChange={(e) => setModel(e.currentTarget.value)} w={240} />
        </Group>
        <Textarea label="Reviewer notes" autosize minRows={3} value={feedback} onChange={(e) => setFeedback(e.currentTarget.value)} />
        <Checkbox label="Also use this version's recorded feedback (notes and low ratings)" checked={useFeedback} onChange={(e) => setUseFeedback(e.currentTarget.checked)} />
        <Checkbox.Group label="Strategies" value={strategies} onChange={setStrategies}>
          <Stack gap={4} mt={4}>
            {STRATEGIES.map((s) => (
              <Checkbox key={s.value} value={s.value} label={s.label} />
            ))}
          </Stack>
        </Checkbox.Group>
        <ErrorNotice error={refine.error} />
        <Group>
          <Button type="submit" loading={refine.isPending} disabled={!prompt.trim() || strategies.length === 0}>
            Propose a refinement
          </Button>
        </Group>
      </Stack>
      {refine.data && <Proposal key={refine.submittedAt} result={refine.data.result} request={refine.data.request} />}
    </Stack>
  );
}
