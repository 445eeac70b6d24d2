// The "Generate" tab: prompt variants for a task (seed 004 POST /api/prompt/generate), saved by the server as
// draft versions without labels, shown best first with their scores and text.
import { Anchor, Button, Group, MultiSelect, NumberInput, Stack, Table, Text, TextInput, Textarea, Title } from "@mantine/core";
import { useMutation } from "@tanstack/react-query";
import { Fragment, useState } from "react";
import { Link } from "react-router";
import { api, unwrap, type Schemas } from "../../api/client";
import { ErrorNotice } from "../../components/ErrorNotice";
import { TableHead } from "../../components/TableHead";
import { promptUrl } from "../../paths";
import { ShowTextButton, TextRow, useOpenRows } from "./ExpandableText";
import { modelTarget, score } from "./model";

type Strategy = NonNullable<Schemas["PromptGenerationRequest"]["strategies"]>[number];
const STRATEGIES: { value: Strategy; label: string }[] = [
  { value: "structural", label: "structural (assembled, no model call)" },
  { value: "llm", label: "llm (the model writes a prompt)" },
  { value: "clarify", label: "clarify" },
  { value: "role", label: "role" },
  { value: "format", label: "format" },
  { value: "step-by-step", label: "step-by-step" },
  { value: "few-shot", label: "few-shot (needs a dataset)" },
  { value: "constrain-length", label: "constrain-length" },
];

const COLUMNS = ["Version", "Strategy", "Score", "Quality", "Evaluation", "Pass rate", "Lint findings", "Written by", "Text"];

function Results({ result }: { result: Schemas["PromptCandidateList"] }) {
  const rows = useOpenRows();
  return (
    <Stack>
      <Title order={2} size="h4">
        {result.candidates.length} candidate(s) saved on{" "}
        <Anchor component={Link} to={promptUrl(result.name)}>
          {result.name}
        </Anchor>
      </Title>
      <Text size="sm">{result.scoring}</Text>
      <Table aria-label="Generated candidates" striped>
        <TableHead columns={COLUMNS} />
        <Table.Tbody>
          {result.candidates.map((c) => (
            <Fragment key={c.versionId}>
              <Table.Tr>
                <Table.Td>
                  <Anchor component={Link} to={promptUrl(result.name)}>
                    v{c.version}
                  </Anchor>
                </Table.Td>
                <Table.Td>{c.strategy}</Table.Td>
                <Table.Td>{score(c.score)}</Table.Td>
                <Table.Td>{score(c.qualityScore)}</Table.Td>
                <Table.Td>{score(c.evalScore)}</Table.Td>
                <Table.Td>{score(c.passRate)}</Table.Td>
                <Table.Td>{c.lintFindings}</Table.Td>
                <Table.Td>{c.modelVersion}</Table.Td>
                <Table.Td>
                  <ShowTextButton open={rows.isOpen(c.versionId)} what={`v${c.version}`} onClick={() => rows.toggle(c.versionId)} />
                </Table.Td>
              </Table.Tr>
              <TextRow open={rows.isOpen(c.versionId)} what={`v${c.version}`} text={c.prompt} columns={COLUMNS.length} />
            </Fragment>
          ))}
        </Table.Tbody>
      </Table>
      {(result.discarded ?? []).length > 0 && (
        <Stack gap={2}>
          <Title order={3} size="h5">
            Discarded
          </Title>
          {(result.discarded ?? []).map((d, index) => (
            <Text size="sm" key={index}>
              {d.strategy}: {d.reason}
            </Text>
          ))}
        </Stack>
      )}
    </Stack>
  );
}

export function GenerateTab({ prompt }: { prompt: string }) {
  const [task, setTask] = useState("");
  const [context, setContext] = useState("");
  const [templateId, setTemplateId] = useState(prompt);
  const [name, setName] = useState("");
  const [dataset, setDataset] = useState("");
  const [count, setCount] = useState<number | string>(3);
  const [strategies, setStrategies] = useState<string[]>([]);
  const [model, setModel] = useState("");
  const [maxTokens, setMaxTokens] = useState<number | string>("");
  const generate = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/prompt/generate", {
          body: {
            task: task.trim(),
            context,
            templateId: templateId.trim() || null,
            name: name.trim() || null,
            dataset: dataset.trim() || null,
            count: Number(count),
            strategies: strategies.length ? (strategies as Strategy[]) : null,
            model: modelTarget(model, maxTokens),
          },
        }),
      ),
  });
  return (
    <Stack>
      <Stack component="form" onSubmit={(e) => { e.preventDefault(); generate.mutate(); }}>
        <Text size="sm" c="dimmed">
          Writes prompt variants for a task and saves each one as a draft version (no label points at it). With a dataset the variants are also evaluated on a few of its cases.
        </Text>
        <Textarea label="Task" description="What the prompt should make the model do" required autosize minRows={2} value={task} onChange={(e) => setTask(e.currentTarget.value)} />
        <Textarea label="Context" autosize minRows={1} value={context} onChange={(e) => setContext(e.currentTarget.value)} />
        <Group align="end">
          <TextInput label="Start from prompt" description="optional: name, name@label or name@3" value={templateId} onChange={(e) => setTemplateId(e.currentTarget.value)} w={240} />
          <TextInput label="Save as" description="optional: default generated/<task>" value={name} onChange={(e) => setName(e.currentTarget.value)} w={220} />
          <TextInput label="Dataset" description="optional: evaluates the variants" value={dataset} onChange={(e) => setDataset(e.currentTarget.value)} w={200} />
          <NumberInput label="Variants" description="1 to 20" min={1} max={20} value={count} onChange={setCount} w={100} />
        </Group>
        <Group align="end">
          <TextInput label="Model" description="provider/model; empty: default" value={model} onChange={(e) => setModel(e.currentTarget.value)} w={220} />
          <NumberInput label="Max tokens" description="optional: answer cap" min={1} max={4096} value={maxTokens} onChange={setMaxTokens} w={160} />
          <MultiSelect label="Strategies" description="empty: all that apply" data={STRATEGIES} value={strategies} onChange={setStrategies} clearable miw={320} style={{ flex: 1 }} />
        </Group>
        <ErrorNotice error={generate.error} />
        <Group>
          <Button type="submit" loading={generate.isPending} disabled={!task.trim()}>
            Generate variants
          </Button>
        </Group>
      </Stack>
      {generate.data && <Results result={generate.data} />}
    </Stack>
  );
}
