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
import { Link, useNavigate } from "react-router";
import { api, unwrap } from "../api/client";
import { useCan } from "../auth";
import { ErrorNotice } from "../components/ErrorNotice";
import { Pager, useCursorPages } from "../components/Paging";
import { promptUrl } from "../paths";
import { useUrlFilters } from "../urlFilters";
import { TableHead } from "../components/TableHead";

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
  const pages = useCursorPages();
  const { filters, setFilter } = useUrlFilters(["q", "tag", "label", "prefix"] as const, pages.reset);
  const [search, setSearch] = useState(filters.q ?? "");
  const [debounced] = useDebouncedValue(search, 250);
  const [creating, setCreating] = useState(false);
  const canWrite = useCan("prompt:write");
  const { tag, label, prefix } = filters;
  const query = { q: debounced || undefined, tag, label, prefix, cursor: pages.cursor, limit: PAGE };
  const prompts = useQuery({
    queryKey: ["prompts", query],
    queryFn: () => unwrap(api.GET("/api/v1/prompts", { params: { query } })),
    placeholderData: keepPreviousData,
  });

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
          <TableHead columns={["Name", "Description", "Tags", "Labels", "Latest", "Updated"]} />
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
      <Pager pages={pages} nextCursor={prompts.data?.nextCursor} />
      {creating && <CreatePromptModal opened={creating} onClose={() => setCreating(false)} />}
    </Stack>
  );
}
