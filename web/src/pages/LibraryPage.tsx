import {
  Anchor,
  Badge,
  Button,
  Group,
  Loader,
  Modal,
  Stack,
  Table,
  TagsInput,
  Text,
  TextInput,
  Textarea,
  Title,
  Tooltip,
} from "@mantine/core";
import { useDebouncedValue } from "@mantine/hooks";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, unwrap } from "../api/client";
import { useCan } from "../auth";
import { ErrorNotice } from "../components/ErrorNotice";
import { promptUrl } from "../paths";

const PAGE = 50;

function CreatePromptModal({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [tags, setTags] = useState<string[]>([]);
  const [template, setTemplate] = useState("");
  const [message, setMessage] = useState("");
  const client = useQueryClient();
  const navigate = useNavigate();
  const create = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/v1/prompts", {
          body: { name, description, tags, template, commitMessage: message, kind: "text" },
        }),
      ),
    onSuccess: async (created) => {
      await client.invalidateQueries({ queryKey: ["prompts"] });
      onClose();
      navigate(promptUrl(created.prompt.name));
    },
  });
  function submit(event: FormEvent) {
    event.preventDefault();
    create.mutate();
  }
  return (
    <Modal opened={opened} onClose={onClose} title="New prompt" size="lg">
      <form onSubmit={submit}>
        <Stack>
          <TextInput label="Name" description="Folders with '/', e.g. support/triage" required value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <TextInput label="Description" value={description} onChange={(e) => setDescription(e.currentTarget.value)} />
          <TagsInput label="Tags" value={tags} onChange={setTags} />
          <Textarea label="Template" description="Jinja-style: {{ variable }}" required autosize minRows={4} styles={{ input: { fontFamily: "monospace" } }} value={template} onChange={(e) => setTemplate(e.currentTarget.value)} />
          <TextInput label="Commit message" value={message} onChange={(e) => setMessage(e.currentTarget.value)} />
          <ErrorNotice error={create.error} title="The prompt was not created" />
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={create.isPending}>
              Create
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

export default function LibraryPage() {
  const [params, setParams] = useSearchParams();
  const [search, setSearch] = useState(params.get("q") ?? "");
  const [debounced] = useDebouncedValue(search, 250);
  const [cursors, setCursors] = useState<string[]>([]);
  const [creating, setCreating] = useState(false);
  const canWrite = useCan("prompt:write");
  const tag = params.get("tag") || undefined;
  const label = params.get("label") || undefined;
  const prefix = params.get("prefix") || undefined;
  const cursor = cursors.at(-1);
  const query = { q: debounced || undefined, tag, label, prefix, cursor, limit: PAGE };
  const prompts = useQuery({
    queryKey: ["prompts", query],
    queryFn: () => unwrap(api.GET("/api/v1/prompts", { params: { query } })),
    placeholderData: keepPreviousData,
  });

  function setFilter(key: string, value: string) {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
    setCursors([]);
  }

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={1} size="h2">
          Prompts
        </Title>
        <Tooltip label="Your role cannot create prompts" disabled={canWrite}>
          <Button onClick={() => setCreating(true)} disabled={!canWrite}>
            New prompt
          </Button>
        </Tooltip>
      </Group>
      <Group align="end">
        <TextInput
          label="Search"
          placeholder="Name or description"
          value={search}
          onChange={(e) => {
            setSearch(e.currentTarget.value);
            setFilter("q", e.currentTarget.value);
          }}
          w={280}
        />
        <TextInput label="Folder" placeholder="support/" defaultValue={prefix} onBlur={(e) => setFilter("prefix", e.currentTarget.value)} w={160} />
        <TextInput label="Tag" defaultValue={tag} onBlur={(e) => setFilter("tag", e.currentTarget.value)} w={140} />
        <TextInput label="Label" placeholder="production" defaultValue={label} onBlur={(e) => setFilter("label", e.currentTarget.value)} w={140} />
        {prompts.isFetching && <Loader size="sm" role="status" aria-label="Loading" />}
      </Group>
      <ErrorNotice error={prompts.error} />
      {prompts.data && prompts.data.items.length === 0 && (
        <Text c="dimmed">{debounced || tag || label || prefix ? "No prompt matches these filters." : "No prompts yet."}</Text>
      )}
      {prompts.data && prompts.data.items.length > 0 && (
        <Table striped highlightOnHover aria-label="Prompts">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Name</Table.Th>
              <Table.Th>Description</Table.Th>
              <Table.Th>Tags</Table.Th>
              <Table.Th>Labels</Table.Th>
              <Table.Th>Latest</Table.Th>
              <Table.Th>Updated</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {prompts.data.items.map((prompt) => (
              <Table.Tr key={prompt.id}>
                <Table.Td>
                  <Anchor component={Link} to={promptUrl(prompt.name)}>
                    {prompt.name}
                  </Anchor>
                </Table.Td>
                <Table.Td>{prompt.description}</Table.Td>
                <Table.Td>
                  <Group gap={4}>
                    {prompt.tags.map((t) => (
                      <Badge key={t} variant="outline" size="sm">
                        {t}
                      </Badge>
                    ))}
                  </Group>
                </Table.Td>
                <Table.Td>
                  <Group gap={4}>
                    {Object.entries(prompt.labels).map(([name, version]) => (
                      <Badge key={name} size="sm">
                        {name} → v{version}
                      </Badge>
                    ))}
                  </Group>
                </Table.Td>
                <Table.Td>v{prompt.latestVersion}</Table.Td>
                <Table.Td>{new Date(prompt.updatedAt).toLocaleString()}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Group>
        <Button variant="default" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </Button>
        <Button
          variant="default"
          disabled={!prompts.data?.nextCursor}
          onClick={() => prompts.data?.nextCursor && setCursors([...cursors, prompts.data.nextCursor])}
        >
          Next page
        </Button>
      </Group>
      {creating && <CreatePromptModal opened={creating} onClose={() => setCreating(false)} />}
    </Stack>
  );
}
