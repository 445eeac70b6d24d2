// A prompt's family: where it was forked from and what was forked from it (each a link), and a form to fork a
// version into a new prompt.
import { Anchor, Button, Group, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { useCan } from "../auth";
import { promptUrl } from "../paths";
import { ErrorNotice } from "./ErrorNotice";
import { TableHead } from "./TableHead";

type Link_ = Schemas["LineageLinkOut"];

function PromptAt({ name, version }: { name: string; version: number }) {
  return (
    <Anchor component={Link} to={promptUrl(name, "lineage")}>
      {name}@v{version}
    </Anchor>
  );
}

function Edges({ title, edges, empty }: { title: string; edges: Link_[]; empty: string }) {
  return (
    <Stack gap="xs">
      <Title order={2} size="h4">
        {title}
      </Title>
      {edges.length === 0 ? (
        <Text size="sm">{empty}</Text>
      ) : (
        <Table aria-label={title}>
          <TableHead columns={["Version", "Forked from", "When"]} />
          <Table.Tbody>
            {edges.map((e) => (
              <Table.Tr key={`${e.prompt}@${e.version}`}>
                <Table.Td>
                  <PromptAt name={e.prompt} version={e.version} />
                </Table.Td>
                <Table.Td>
                  <PromptAt name={e.fromPrompt} version={e.fromVersion} />
                </Table.Td>
                <Table.Td>{new Date(e.createdAt).toLocaleString()}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Stack>
  );
}

function ForkForm({ name, versions }: { name: string; versions: number[] }) {
  const [newName, setNewName] = useState(`${name}-fork`);
  const [version, setVersion] = useState<string | null>(versions[0] ? String(versions[0]) : null);
  const client = useQueryClient();
  const navigate = useNavigate();
  const fork = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/v1/prompts/{name}/fork", {
          params: { path: { name } },
          body: { newName, version: version ? Number(version) : undefined },
        }),
      ),
    onSuccess: async (created) => {
      await client.invalidateQueries({ queryKey: ["prompts"] });
      await client.invalidateQueries({ queryKey: ["prompt", name, "lineage"] });
      navigate(`${promptUrl(created.prompt.name)}?tab=lineage`);
    },
  });
  return (
    <form
      aria-label="Fork this prompt"
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        fork.mutate();
      }}
    >
      <Stack gap="xs">
        <Title order={2} size="h4">
          Fork
        </Title>
        <Group align="end">
          <TextInput label="New prompt name" required value={newName} onChange={(e) => setNewName(e.currentTarget.value)} w={320} />
          <Select label="From version" data={versions.map((v) => ({ value: String(v), label: `v${v}` }))} value={version} onChange={setVersion} allowDeselect={false} w={140} />
          <Button type="submit" loading={fork.isPending}>
            Fork
          </Button>
        </Group>
        <ErrorNotice error={fork.error} title="The prompt was not forked" />
      </Stack>
    </form>
  );
}

export function Lineage({ name, versions }: { name: string; versions: number[] }) {
  const canWrite = useCan("prompt:write");
  const lineage = useQuery({
    queryKey: ["prompt", name, "lineage"],
    queryFn: () => unwrap(api.GET("/api/v1/prompts/{name}/lineage", { params: { path: { name } } })),
  });
  return (
    <Stack>
      <ErrorNotice error={lineage.error} />
      {lineage.data && (
        <>
          <Edges title="Forked from" edges={lineage.data.forkedFrom} empty="This prompt was not forked from another one." />
          <Edges title="Forks of this prompt" edges={lineage.data.forks} empty="No prompt was forked from this one yet." />
        </>
      )}
      {canWrite && <ForkForm name={name} versions={versions} />}
    </Stack>
  );
}
