import { Alert, Anchor, List, Text } from "@mantine/core";
import { Link } from "react-router";
import type { Schemas } from "../api/client";
import { promptUrl } from "../paths";
import { percent } from "../search";

type NearDuplicate = Schemas["NearDuplicateOut"];

/** After a save: the prompt just written means nearly the same as other prompts. A hint, not a refusal. */
export function NearDuplicateWarning({
  name,
  version,
  duplicates,
  onClose,
}: {
  name: string;
  version: number;
  duplicates: NearDuplicate[];
  onClose: () => void;
}) {
  if (duplicates.length === 0) return null;
  return (
    <Alert
      role="status"
      variant="light"
      color="yellow"
      styles={{ title: { color: "var(--mantine-color-text)" } }}
      title="This prompt may already exist"
      withCloseButton
      closeButtonLabel="Dismiss the duplicate warning"
      onClose={onClose}
      data-testid="near-duplicates"
    >
      <Text size="sm" c="var(--mantine-color-text)">
        {name}@{version} is saved. It means nearly the same as {duplicates.length === 1 ? "another prompt" : "other prompts"}; check
        whether {duplicates.length === 1 ? "it" : "one of them"} already does the job:
      </Text>
      <List size="sm" mt={4}>
        {duplicates.map((d) => (
          <List.Item key={d.versionId}>
            <Text span size="sm" c="var(--mantine-color-text)">
              {percent(d.similarity)} similar to{" "}
            </Text>
            <Anchor component={Link} to={promptUrl(d.name)} size="sm">
              {d.name}@{d.version}
            </Anchor>
          </List.Item>
        ))}
      </List>
    </Alert>
  );
}
