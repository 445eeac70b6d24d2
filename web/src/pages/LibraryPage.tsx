import {
  Anchor,
  Badge,
  Button,
  Group,
  Loader,
  Modal,
  Select,
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
import { promptUrl, type SavedState } from "../paths";
import { useUrlFilters } from "../urlFilters";
import { TableHead } from "../components/TableHead";

const PAGE = 50;

// "Updated" choices kept in the URL as a short code; the instant is computed when the list is asked for.
const UPDATED: { value: string; label: string; hours: number }[] = [
  { value: "24h", label: "Last 24 hours", hours: 24 },
  { value: "7d", label: "Last 7 days", hours: 24 * 7 },
  { value: "30d", label: "Last 30 days", hours: 24 * 30 },
  { value: "90d", label: "Last 90 days", hours: 24 * 90 },
];

function updatedAfter(code: string | undefined): string | undefined {
  const choice = UPDATED.find((u) => u.value === code);
  if (!choice) return undefined;
  const minute = 60_000;
  return new Date(Math.floor((Date.now() - choice.hours * 3_600_000) / minute) * minute).toISOString();
}

/** Who can be an author (project members) and which models the catalog knows, for the filter menus. */
function useFilterChoices() {
  const members = useQuery({ queryKey: ["members"], queryFn: () => unwrap(api.GET("/api/v1/members")), staleTime: 60_000 });
  const models = useQuery({ queryKey: ["models"], queryFn: () => unwrap(api.GET("/api/v1/models")), staleTime: 60_000 });
  const authors = (members.data ?? []).map((m) => ({ value: m.userId, label: m.name || m.email }));
  const modelNames = [...new Set((models.data ?? []).map((m) => m.model))].sort();
  return { authors, modelNames };
}

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
      // The prompt page warns when the new prompt means nearly the same as one that exists.
      const saved: SavedState = { name: created.prompt.name, version: created.version.version, nearDuplicates: created.nearDuplicates ?? [] };
      navigate(promptUrl(created.prompt.name), { state: { saved } });
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
  const { filters, setFilter } = useUrlFilters(["q", "tag", "label", "prefix", "model", "author", "updated", "sort"] as const, pages.reset);
  const choices = useFilterChoices();
  const [search, setSearch] = useState(filters.q ?? "");
  const [debounced] = useDebouncedValue(search, 250);
  const [creating, setCreating] = useState(false);
  const canWrite = useCan("prompt:write");
  const { tag, label, prefix, model, author, updated } = filters;
  const sort = filters.sort === "updated" ? "updated" : "name";
  const query = {
    q: debounced || undefined,
    tag,
    label,
    prefix,
    model,
    author,
    updatedAfter: updatedAfter(updated),
    sort,
    cursor: pages.cursor,
    limit: PAGE,
  } as const;
  const filtered = Boolean(debounced || tag || label || prefix || model || author || updated);
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
        <Group gap="xs">
          <Button component={Link} to="/search/duplicates" variant="default">
            Duplicates
          </Button>
          <Tooltip label="Your role cannot create prompts" disabled={canWrite}>
            <Button onClick={() => setCreating(true)} disabled={!canWrite}>
              New prompt
            </Button>
          </Tooltip>
        </Group>
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
        <Select
          label="Model"
          placeholder="Any"
          searchable
          clearable
          data={choices.modelNames}
          value={model ?? null}
          onChange={(value) => setFilter("model", value)}
          w={180}
        />
        <Select label="Author" placeholder="Anyone" searchable clearable data={choices.authors} value={author ?? null} onChange={(value) => setFilter("author", value)} w={180} />
        <Select label="Updated" placeholder="Any time" clearable data={UPDATED} value={updated ?? null} onChange={(value) => setFilter("updated", value)} w={150} />
        <Select
          label="Sort"
          allowDeselect={false}
          data={[
            { value: "name", label: "Name (A–Z)" },
            { value: "updated", label: "Recently updated" },
          ]}
          value={sort}
          onChange={(value) => setFilter("sort", value === "updated" ? value : null)}
          w={170}
        />
        {prompts.isFetching && <Loader size="sm" role="status" aria-label="Loading" />}
      </Group>
      <ErrorNotice error={prompts.error} />
      {prompts.data && prompts.data.items.length === 0 && (
        <Text c="dimmed">{filtered ? "No prompt matches these filters." : "No prompts yet."}</Text>
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
