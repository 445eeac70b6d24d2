import { Badge, Box, Code, SegmentedControl, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import { useState } from "react";
import type { Schemas } from "../api/client";
import { CHANGE_COLOR } from "../colors";

type Diff = Schemas["DiffOut"];
type Change = { path?: string; op?: string; from?: unknown; to?: unknown; name?: string };

function show(value: unknown): string {
  return value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value);
}

function lineStyle(line: string) {
  if (line.startsWith("+") && !line.startsWith("+++")) return { background: "var(--mantine-color-green-light)" };
  if (line.startsWith("-") && !line.startsWith("---")) return { background: "var(--mantine-color-red-light)" };
  return undefined;
}

/** Split a unified diff into the old and the new side, line by line, for a side-by-side view. */
export function sides(unified: string): { left: string[]; right: string[] } {
  const left: string[] = [];
  const right: string[] = [];
  for (const line of unified.split("\n")) {
    if (line.startsWith("---") || line.startsWith("+++") || line.startsWith("@@") || line.startsWith("\\")) continue;
    if (line.startsWith("-")) left.push(line.slice(1));
    else if (line.startsWith("+")) right.push(line.slice(1));
    else {
      while (left.length < right.length) left.push("");
      while (right.length < left.length) right.push("");
      left.push(line.slice(1));
      right.push(line.slice(1));
    }
  }
  while (left.length < right.length) left.push("");
  while (right.length < left.length) right.push("");
  return { left, right };
}

function Changes({ title, changes }: { title: string; changes: Change[] }) {
  if (changes.length === 0) return null;
  return (
    <Box>
      <Title order={3} size="h5">
        {title}
      </Title>
      <Table aria-label={title}>
        <Table.Tbody>
          {changes.map((change, index) => (
            <Table.Tr key={index}>
              <Table.Td>
                <Badge size="sm" color={CHANGE_COLOR[change.op ?? "changed"] ?? "gray.7"}>
                  {change.op}
                </Badge>
              </Table.Td>
              <Table.Td>
                <Code>{change.path ?? change.name}</Code>
              </Table.Td>
              <Table.Td>{show(change.from)}</Table.Td>
              <Table.Td>{show(change.to)}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Box>
  );
}

export function DiffView({ diff }: { diff: Diff }) {
  const [mode, setMode] = useState("inline");
  if (diff.identical) return <Text>{`${diff.from} and ${diff.to} are identical.`}</Text>;
  const split = sides(diff.template);
  return (
    <Stack data-testid="diff">
      {diff.kindChanged && <Text>The kind changed (text ↔ chat).</Text>}
      {diff.template && (
        <>
          <SegmentedControl
            aria-label="Diff layout"
            value={mode}
            onChange={setMode}
            data={[
              { value: "inline", label: "Inline" },
              { value: "split", label: "Side by side" },
            ]}
            w={240}
          />
          {mode === "inline" ? (
            <Code block aria-label="Template diff">
              {diff.template.split("\n").map((line, index) => (
                <div key={index} style={lineStyle(line)}>
                  {line || " "}
                </div>
              ))}
            </Code>
          ) : (
            <SimpleGrid cols={2}>
              <Code block aria-label={`Template of ${diff.from}`}>{split.left.join("\n")}</Code>
              <Code block aria-label={`Template of ${diff.to}`}>{split.right.join("\n")}</Code>
            </SimpleGrid>
          )}
        </>
      )}
      <Changes title="Variables" changes={diff.variables as Change[]} />
      <Changes title="Model config" changes={diff.modelConfig as Change[]} />
      <Changes title="Response schema" changes={diff.responseSchema as Change[]} />
      <Changes title="Metadata" changes={diff.metadata as Change[]} />
    </Stack>
  );
}
