import { Badge, Group, Loader, Paper, Text, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useId } from "react";
import { api, unwrap } from "../api/client";
import { SEVERITY_COLOR } from "../colors";
import { percent } from "../search";
import { ErrorNotice } from "./ErrorNotice";
import { PromptLink } from "./PromptLink";

const SHOWN = 5;
/** From here on the server also warns on save: worth a second look. */

/** The prompts of this project whose latest version means about the same as this one's, most similar first. */
export function SimilarPrompts({ name }: { name: string }) {
  const heading = useId();
  const similar = useQuery({
    queryKey: ["prompt", name, "similar"],
    queryFn: () => unwrap(api.GET("/api/v1/prompts/{name}/similar", { params: { path: { name }, query: { limit: SHOWN } } })),
  });
  const items = similar.data?.items ?? [];
  return (
    <Paper withBorder p="sm" component="section" aria-labelledby={heading}>
      <Group gap="xs" mb={4}>
        <Title order={2} size="h5" id={heading}>
          Similar prompts
        </Title>
        {similar.isLoading && <Loader size="xs" role="status" aria-label="Loading similar prompts" />}
      </Group>
      <ErrorNotice error={similar.error} title="Similar prompts could not be loaded" />
      {similar.data && items.length === 0 && <Text size="sm">No other prompt in this project means about the same.</Text>}
      {items.length > 0 && (
        <Group component="ul" gap="lg" aria-labelledby={heading} style={{ listStyle: "none", margin: 0, padding: 0 }}>
          {items.map((item) => (
            <Group component="li" key={item.promptId} gap={6} wrap="nowrap" title={item.description || undefined}>
              <PromptLink name={item.name} projectId={item.projectId} />
              <Text span size="sm">
                {percent(item.similarity)} similar
              </Text>
              {item.duplicate && (
                <Badge size="sm" color={SEVERITY_COLOR.warning}>
                  near duplicate
                </Badge>
              )}
            </Group>
          ))}
        </Group>
      )}
    </Paper>
  );
}
