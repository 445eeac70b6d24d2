// Groups of prompts in the current project whose latest versions mean nearly the same: candidates to merge,
// archive or tell apart. The duplicate-score floor is in the address (?threshold=0.35; default: the server's, which the answer names).
import { Anchor, Badge, Button, Group, Loader, Paper, Select, Stack, Table, Text, Title } from "@mantine/core";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";
import { api, unwrap } from "../api/client";
import { ErrorNotice } from "../components/ErrorNotice";
import { TableHead } from "../components/TableHead";
import { promptUrl } from "../paths";
import { THRESHOLDS, readThreshold, thresholdLabel } from "../search";

export default function DuplicatesPage() {
  const [params, setParams] = useSearchParams();
  const chosen = readThreshold(params.get("threshold"));
  // the server's default floor (its embedding model's), learnt from an answer without a chosen floor
  const defaults = useQuery({
    queryKey: ["search", "duplicates", null],
    queryFn: () => unwrap(api.GET("/api/v1/search/duplicates", { params: { query: {} } })),
  });
  const duplicates = useQuery({
    queryKey: ["search", "duplicates", chosen],
    queryFn: () => unwrap(api.GET("/api/v1/search/duplicates", { params: { query: chosen === null ? {} : { threshold: chosen } } })),
    placeholderData: keepPreviousData,
  });
  const serverDefault = chosen === null ? duplicates.data?.threshold : defaults.data?.threshold;
  const threshold = chosen ?? serverDefault;
  const choices = [...new Set([...THRESHOLDS, ...(serverDefault === undefined ? [] : [serverDefault]), ...(threshold === undefined ? [] : [threshold])])]
    .sort((a, b) => a - b)
    .map((t) => ({ value: String(t), label: thresholdLabel(t, serverDefault ?? Number.NaN) }));
  const clusters = duplicates.data?.clusters ?? [];

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={1} size="h2">
          Duplicate prompts
        </Title>
        <Button component={Link} to="/" variant="default" size="xs">
          Back to the library
        </Button>
      </Group>
      <Text>
        Prompts of this project whose latest versions are probably the same instruction reworded, in groups (the duplicate score blends their
        meaning with the words they share). Keep one and archive the others, or make the difference clear in their names and descriptions.
      </Text>
      <Group align="end">
        <Select
          label="Duplicate score"
          data={choices}
          value={threshold === undefined ? null : String(threshold)}
          allowDeselect={false}
          onChange={(value) => setParams(value && Number(value) !== serverDefault ? { threshold: value } : {}, { replace: true })}
          w={180}
        />
        {duplicates.isFetching && <Loader size="sm" role="status" aria-label="Loading" />}
      </Group>
      <ErrorNotice error={duplicates.error} title="Duplicates could not be found" />
      {duplicates.data && clusters.length === 0 && (
        <Text data-testid="no-duplicates">No prompts of this project reach a duplicate score of {duplicates.data.threshold.toFixed(2)} with each other.</Text>
      )}
      {clusters.length > 0 && (
        <Text size="sm" role="status">
          {clusters.length === 1 ? "1 group" : `${clusters.length} groups`} of near-duplicate prompts
        </Text>
      )}
      {clusters.map((cluster, index) => {
        const title = `Group ${index + 1}: ${cluster.prompts.length} prompts, duplicate score ${cluster.score.toFixed(2)} or more`;
        return (
          <Paper key={cluster.prompts.map((p) => p.promptId).join(",")} withBorder p="sm" component="section" aria-label={title} data-testid="duplicate-cluster">
            <Title order={2} size="h5" mb="xs">
              {title}
            </Title>
            <Table aria-label={`Prompts of group ${index + 1}`}>
              <TableHead columns={["Name", "Version", "Description", "Tags", "Labels", "Updated"]} />
              <Table.Tbody>
                {cluster.prompts.map((prompt) => (
                  <Table.Tr key={prompt.promptId}>
                    <Table.Td>
                      <Anchor component={Link} to={promptUrl(prompt.name)}>
                        {prompt.name}
                      </Anchor>
                    </Table.Td>
                    <Table.Td>v{prompt.version}</Table.Td>
                    <Table.Td>{prompt.description}</Table.Td>
                    <Table.Td>
                      <Group gap={4}>
                        {prompt.tags.map((tag) => (
                          <Badge key={tag} size="sm" variant="outline">
                            {tag}
                          </Badge>
                        ))}
                      </Group>
                    </Table.Td>
                    <Table.Td>
                      <Group gap={4}>
                        {prompt.labels.map((label) => (
                          <Badge key={label} size="sm">
                            {label}
                          </Badge>
                        ))}
                      </Group>
                    </Table.Td>
                    <Table.Td>{new Date(prompt.updatedAt).toLocaleString()}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Paper>
        );
      })}
    </Stack>
  );
}
