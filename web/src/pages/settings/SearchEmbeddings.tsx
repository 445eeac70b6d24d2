// The embedding model the project's search uses: the server's offline model by default, or one of the project's
// provider connections (OpenAI-compatible) and a model name. Saving checks the model with one call, then every
// version is embedded again in the background; the count of versions still waiting is shown until it reaches 0.
import { Alert, Badge, Button, Group, NumberInput, Select, Stack, Table, Text, TextInput } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { api, unwrap } from "../../api/client";
import { useCan } from "../../auth";
import { ErrorNotice } from "../../components/ErrorNotice";

const EMBEDDABLE = new Set(["openai", "azure_openai", "local"]);

export function embeddingModelText(settings: { source: string; connection?: string | null; model: string }): string {
  return settings.source === "provider" ? `${settings.connection}/${settings.model}` : `${settings.model} (the server's offline model)`;
}

export function SearchEmbeddings() {
  const canManage = useCan("provider:manage");
  const client = useQueryClient();
  const settings = useQuery({
    queryKey: ["search-settings"],
    queryFn: () => unwrap(api.GET("/api/v1/search/settings")),
    refetchInterval: (query) => ((query.state.data?.documentsWaiting ?? 0) > 0 ? 2000 : false),
  });
  const connections = useQuery({
    queryKey: ["providers"],
    queryFn: () => unwrap(api.GET("/api/v1/providers")),
    enabled: canManage,
  });
  const [connection, setConnection] = useState<string | null>(null);
  const [model, setModel] = useState("");
  const [duplicateScore, setDuplicateScore] = useState<number | string>("");
  const [minSimilarity, setMinSimilarity] = useState<number | string>("");
  const done = () => client.invalidateQueries({ queryKey: ["search-settings"] });
  const save = useMutation({
    mutationFn: () =>
      unwrap(
        api.PUT("/api/v1/search/settings", {
          body: {
            connection: connection ?? "",
            model,
            duplicateScore: duplicateScore === "" ? null : Number(duplicateScore),
            minSimilarity: minSimilarity === "" ? null : Number(minSimilarity),
          },
        }),
      ),
    onSuccess: done,
  });
  const reset = useMutation({ mutationFn: () => unwrap(api.DELETE("/api/v1/search/settings")), onSuccess: done });
  const current = settings.data;
  const choices = (connections.data ?? []).filter((c) => EMBEDDABLE.has(c.type) || c.name === "local").map((c) => c.name);
  return (
    <Stack>
      <ErrorNotice error={settings.error ?? reset.error} />
      {current && (
        <Table aria-label="Search embedding model" w="auto">
          <Table.Tbody>
            <Table.Tr>
              <Table.Th>Model</Table.Th>
              <Table.Td>
                {embeddingModelText(current)} <Badge color={current.source === "provider" ? "blue" : "gray.7"}>{current.source}</Badge>
              </Table.Td>
            </Table.Tr>
            <Table.Tr>
              <Table.Th>Near-duplicate from</Table.Th>
              <Table.Td>{current.duplicateScore}</Table.Td>
            </Table.Tr>
            <Table.Tr>
              <Table.Th>Similar from</Table.Th>
              <Table.Td>{current.minSimilarity}</Table.Td>
            </Table.Tr>
          </Table.Tbody>
        </Table>
      )}
      {current && current.documentsWaiting > 0 && (
        <Alert color="blue" title="Embedding">
          {current.documentsWaiting} versions wait for their vectors; until then they are found by their words.
        </Alert>
      )}
      {canManage && (
        <form
          aria-label="Search with a provider model"
          onSubmit={(e: FormEvent) => {
            e.preventDefault();
            save.mutate();
          }}
        >
          <Stack gap="xs">
            <Text size="sm" c="dimmed">
              Search this project with one of its provider connections instead. The model is checked with one call, then every version is embedded
              again by it in the background (each call is a run of source "search").
            </Text>
            <Group align="end">
              <Select label="Connection" required data={choices} value={connection} onChange={setConnection} w={180} />
              <TextInput label="Embedding model" required placeholder="text-embedding-3-small" value={model} onChange={(e) => setModel(e.currentTarget.value)} />
              <NumberInput label="Near-duplicate from" placeholder="0.55" min={0.01} max={1} step={0.05} decimalScale={2} value={duplicateScore} onChange={setDuplicateScore} w={150} />
              <NumberInput label="Similar from" placeholder="0.4" min={0.01} max={1} step={0.05} decimalScale={2} value={minSimilarity} onChange={setMinSimilarity} w={120} />
              <Button type="submit" loading={save.isPending} disabled={!connection || !model.trim()}>
                Use this model
              </Button>
              {current?.source === "provider" && (
                <Button variant="default" loading={reset.isPending} onClick={() => reset.mutate()}>
                  Use the server's model
                </Button>
              )}
            </Group>
            <ErrorNotice error={save.error} title="The model was not changed" />
          </Stack>
        </form>
      )}
    </Stack>
  );
}
