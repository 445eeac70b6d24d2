// Groups of prompts in the current project whose latest versions mean nearly the same: candidates to merge,
// archive or tell apart. The similarity floor is in the address (?threshold=0.9).
import { Anchor, Badge, Button, Group, Loader, Paper, Select, Stack, Table, Text, Title } from "@mantine/core";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";
import { api, unwrap } from "../api/client";
import { ErrorNotice } from "../components/ErrorNotice";
import { TableHead } from "../components/TableHead";
import { promptUrl } from "../paths";
import { THRESHOLDS, percent, readThreshold } from "../search";

export default function DuplicatesPage() {
  const [params, setParams] = useSearchParams();
  const threshold = readThreshold(params.get("threshold"));
  const duplicates = useQuery({
    queryKey: ["search", "duplicates", threshold],
    queryFn: () => unwrap(api.GET("/api/v1/search/duplicates", { params: { query: { threshold } } })),
    placeholderData: keepPreviousData,
  });
  const choices = [...new Set([...THRESHOLDS, threshold])].sort((a, b) => a - b).map((t) => ({ value: String(t), label: `${percent(t)} or more` }));
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
        Prompts of this project whose latest versions mean nearly the same, in groups. Keep one and archive the others, or make the difference
        clear in their names and descriptions.
      </Text>
      <Group align="end">
        <Select
          label="Similarity"
          data={choices}
          value={String(threshold)}
          allowDeselect={false}
          onChange={(value) => setParams(value && Number(value) !== 0.9 ? { threshold: value } : {}, { replace: true })}
          w={180}
        />
        {duplicates.isFetching && <Loader size="sm" role="status" aria-label="Loading" />}
      </Group>
      <ErrorNotice error={duplicates.error} title="Duplicates could not be found" />
      {duplicates.data && clusters.length === 0 && (
        <Text data-testid="no-duplicates">No prompts of this project are {percent(threshold)} or more similar to each other.</Text>
      )}
      {clusters.length > 0 && (
        <Text size="sm" role="status">
          {clusters.length === 1 ? "1 group" : `${clusters.length} groups`} of near-duplicate prompts
        </Text>
      )}
      {clusters.map((cluster, index) => {
        const title = `Group ${index + 1}: ${cluster.prompts.length} prompts, ${percent(cluster.similarity)} or more similar`;
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
