// Search results for the header's search box: by words, by meaning, or both (hybrid), with tag and label
// filters, across the current project or every project the user can read. Everything is in the address.
import { Alert, Badge, Button, Group, Loader, Paper, SegmentedControl, Stack, Switch, TagsInput, Text, Title } from "@mantine/core";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { ErrorNotice } from "../components/ErrorNotice";
import { PromptLink } from "../components/PromptLink";
import { Snippet } from "../components/Snippet";
import { MODES, apiQuery, lastPage, matchSummary, rangeText, readSearch, searchHref, type Mode, type SearchState } from "../search";

type Hit = Schemas["SearchHitOut"];

function Result({ hit }: { hit: Hit }) {
  return (
    <Paper component="li" withBorder p="sm" data-testid="search-result">
      <Stack gap={6}>
        <Group justify="space-between" align="baseline">
          <Group gap="xs" align="baseline">
            <Title order={2} size="h5">
              <PromptLink name={hit.name} projectId={hit.projectId} />
            </Title>
            <Text size="sm">v{hit.version}</Text>
            <Text size="sm">in project {hit.project}</Text>
          </Group>
          <Text size="xs">{matchSummary(hit)}</Text>
        </Group>
        {hit.description && <Text size="sm">{hit.description}</Text>}
        <Snippet segments={hit.snippet} />
        {(hit.tags.length > 0 || hit.labels.length > 0) && (
          <Group gap={4}>
            {hit.labels.map((label) => (
              <Badge key={`label-${label}`} size="sm">
                {label}
              </Badge>
            ))}
            {hit.tags.map((tag) => (
              <Badge key={`tag-${tag}`} size="sm" variant="outline">
                {tag}
              </Badge>
            ))}
          </Group>
        )}
      </Stack>
    </Paper>
  );
}

/** No result: say so, and offer the changes most likely to find something. */
function NoResults({ state, set }: { state: SearchState; set: (patch: Partial<SearchState>) => void }) {
  const filtered = state.tags.length > 0 || state.labels.length > 0;
  return (
    <Stack gap="xs" data-testid="no-results">
      <Text>No prompt matches “{state.q}”{filtered ? " with these filters" : ""}.</Text>
      <Group gap="xs">
        {state.mode === "text" && (
          <Button size="xs" variant="default" onClick={() => set({ mode: "semantic" })}>
            Search by meaning instead
          </Button>
        )}
        {filtered && (
          <Button size="xs" variant="default" onClick={() => set({ tags: [], labels: [] })}>
            Clear the filters
          </Button>
        )}
        {!state.allProjects && (
          <Button size="xs" variant="default" onClick={() => set({ allProjects: true })}>
            Search all my projects
          </Button>
        )}
      </Group>
    </Stack>
  );
}

export default function SearchPage() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const state = readSearch(params);
  const query = apiQuery(state);
  const results = useQuery({
    queryKey: ["search", query],
    queryFn: () => unwrap(api.GET("/api/v1/search", { params: { query } })),
    enabled: state.q !== "",
    placeholderData: keepPreviousData,
  });
  /** A changed filter starts again at page 1; the address is replaced (Back leaves the search). */
  const set = (patch: Partial<SearchState>) => navigate(searchHref({ ...state, page: 1, ...patch }), { replace: true });
  const goTo = (page: number) => {
    navigate(searchHref({ ...state, page }));
    window.scrollTo({ top: 0 });
  };
  const data = state.q ? results.data : undefined;
  const pages = data ? lastPage(data.total) : 1;
  const hint = MODES.find((m) => m.value === state.mode)?.hint;

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={1} size="h2">
          {state.q ? `Search results for “${state.q}”` : "Search prompts"}
        </Title>
        <Button component={Link} to="/search/duplicates" variant="default" size="xs">
          Find duplicate prompts
        </Button>
      </Group>
      <Group align="end" gap="md">
        <Stack gap={4}>
          <Text size="sm" fw={500} id="search-mode-label">
            Match by
          </Text>
          <SegmentedControl
            aria-labelledby="search-mode-label"
            value={state.mode}
            onChange={(value) => set({ mode: value as Mode })}
            data={MODES.map((m) => ({ value: m.value, label: m.label }))}
          />
        </Stack>
        <TagsInput label="Tags" placeholder="Every tag, Enter to add" value={state.tags} onChange={(tags) => set({ tags })} w={220} clearable />
        <TagsInput label="Labels" placeholder="production" value={state.labels} onChange={(labels) => set({ labels })} w={220} clearable />
        <Stack gap={6} pb={4}>
          <Switch label="All my projects" checked={state.allProjects} onChange={(e) => set({ allProjects: e.currentTarget.checked })} />
          <Switch label="Older versions too" checked={state.allVersions} onChange={(e) => set({ allVersions: e.currentTarget.checked })} />
        </Stack>
        {results.isFetching && <Loader size="sm" role="status" aria-label="Searching" />}
      </Group>
      {hint && <Text size="sm">{hint}.</Text>}
      {!state.q && (
        <Text data-testid="search-empty">
          Type what you are looking for in the search box at the top of the page (press / or Ctrl+K to get there). Words finds prompts that contain
          your words; Meaning finds prompts that mean about the same even in other words.
        </Text>
      )}
      {state.q && <ErrorNotice error={results.error} title="The search failed" />}
      {data?.warnings?.map((warning) => (
        <Alert key={warning} variant="light" color="yellow" styles={{ title: { color: "var(--mantine-color-text)" } }} title="Searched by words only">
          <Text size="sm" c="var(--mantine-color-text)">
            {warning}
          </Text>
        </Alert>
      ))}
      {data && data.items.length === 0 && <NoResults state={state} set={set} />}
      {data && data.items.length > 0 && (
        <>
          <Text size="sm" role="status">
            {rangeText(state.page, data.items.length, data.total)}
          </Text>
          <Stack component="ol" aria-label="Search results" gap="sm" style={{ listStyle: "none", margin: 0, padding: 0 }}>
            {data.items.map((hit) => (
              <Result key={hit.versionId} hit={hit} />
            ))}
          </Stack>
          <Group>
            <Button variant="default" disabled={state.page <= 1} onClick={() => goTo(state.page - 1)}>
              Previous page
            </Button>
            <Text size="sm">
              Page {Math.min(state.page, pages)} of {pages}
            </Text>
            <Button variant="default" disabled={state.page >= pages} onClick={() => goTo(state.page + 1)}>
              Next page
            </Button>
          </Group>
        </>
      )}
      {data && data.items.length === 0 && state.page > 1 && (
        <Button variant="default" w={200} onClick={() => goTo(1)}>
          Back to the first page
        </Button>
      )}
    </Stack>
  );
}
