// Datasets: the list, an upload (drop a CSV/JSONL/JSON file, preview it, import it as a new dataset or a new
// version; problems are listed line by line), and one dataset's versions and cases (/datasets/<name>).
import { Anchor, Badge, Button, Code, Group, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type DragEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { ApiError, api, sessionHeaders, unwrap } from "../api/client";
import { useCan } from "../auth";
import { ErrorNotice } from "../components/ErrorNotice";
import { Pager, useCursorPages } from "../components/Paging";
import { TableHead } from "../components/TableHead";
import { useUrlFilters } from "../urlFilters";

const PREVIEW_LINES = 6;
type Format = "csv" | "jsonl" | "json";
const CONTENT_TYPES: Record<Format, string> = { csv: "text/csv", jsonl: "application/x-ndjson", json: "application/json" };

export function datasetUrl(name: string): string {
  return `/datasets/${name.split("/").map(encodeURIComponent).join("/")}`;
}

export function formatOf(fileName: string): Format | null {
  const lower = fileName.toLowerCase();
  if (lower.endsWith(".csv")) return "csv";
  if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) return "jsonl";
  if (lower.endsWith(".json")) return "json";
  return null;
}

function Upload() {
  const [file, setFile] = useState<{ name: string; text: string; format: Format } | null>(null);
  const [name, setName] = useState("");
  const [message, setMessage] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [over, setOver] = useState(false);
  const client = useQueryClient();
  const navigate = useNavigate();
  async function take(picked: File | undefined) {
    setProblem(null);
    if (!picked) return;
    const format = formatOf(picked.name);
    if (!format) return setProblem(`${picked.name}: expected a .csv, .jsonl or .json file`);
    setFile({ name: picked.name, text: await picked.text(), format });
    if (!name) setName(picked.name.replace(/\.[^.]+$/, ""));
  }
  const upload = useMutation({
    mutationFn: async () => {
      const response = await fetch(
        `/api/v1/datasets/${encodeURIComponent(name)}/import?format=${file!.format}&message=${encodeURIComponent(message)}`,
        { method: "POST", body: file!.text, headers: { "Content-Type": CONTENT_TYPES[file!.format], ...sessionHeaders("POST") } },
      );
      const body = await response.json().catch(() => null);
      if (!response.ok) throw new ApiError(response.status, body, response.headers.get("x-request-id"));
      return body as { dataset: { name: string } };
    },
    onSuccess: async (saved) => {
      await client.invalidateQueries({ queryKey: ["datasets"] });
      navigate(datasetUrl(saved.dataset.name));
    },
  });
  const lines = file ? file.text.split("\n").slice(0, PREVIEW_LINES) : [];
  const lineErrors = upload.error instanceof ApiError ? upload.error.fieldErrors : [];
  return (
    <Stack>
      <Title order={2} size="h4">
        Upload a file
      </Title>
      <div
        role="button"
        tabIndex={0}
        onDragOver={(e: DragEvent) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e: DragEvent) => {
          e.preventDefault();
          setOver(false);
          void take(e.dataTransfer.files[0]);
        }}
        onKeyDown={(e) => e.key === "Enter" && document.getElementById("dataset-file")?.click()}
        onClick={() => document.getElementById("dataset-file")?.click()}
        style={{
          border: `2px dashed var(--mantine-color-${over ? "blue-8" : "default-border"})`,
          borderRadius: 8,
          padding: 24,
          cursor: "pointer",
          textAlign: "center",
        }}
      >
        <Text>{file ? `${file.name} (${file.format}, ${file.text.length.toLocaleString()} characters)` : "Drop a CSV, JSONL or JSON file here, or click to choose one"}</Text>
        <input id="dataset-file" type="file" accept=".csv,.jsonl,.ndjson,.json" hidden aria-label="Dataset file" onChange={(e) => void take(e.currentTarget.files?.[0])} />
      </div>
      {problem && <ErrorNotice error={new Error(problem)} title="Not a dataset file" />}
      {file && (
        <>
          <Code block aria-label="File preview">{lines.join("\n")}</Code>
          <Group align="end">
            <TextInput label="Dataset name" required value={name} onChange={(e) => setName(e.currentTarget.value)} />
            <TextInput label="Version message" value={message} onChange={(e) => setMessage(e.currentTarget.value)} />
            <Button onClick={() => upload.mutate()} loading={upload.isPending} disabled={!name}>
              Import
            </Button>
          </Group>
          <ErrorNotice error={upload.error} title="The file was not imported" />
          {lineErrors.length > 5 && (
            <Table aria-label="Problems by line">
              <Table.Tbody>
                {lineErrors.map((err, index) => (
                  <Table.Tr key={index}>
                    <Table.Td>{(err.loc ?? []).join(".")}</Table.Td>
                    <Table.Td>{err.msg}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </>
      )}
    </Stack>
  );
}

export default function DatasetsPage() {
  const canWrite = useCan("dataset:write");
  const [q, setQ] = useState("");
  const datasets = useQuery({
    queryKey: ["datasets", q],
    queryFn: () => unwrap(api.GET("/api/v1/datasets", { params: { query: { q: q || undefined, limit: 200 } } })),
    placeholderData: keepPreviousData,
  });
  return (
    <Stack>
      <Title order={1} size="h2">
        Datasets
      </Title>
      <TextInput label="Search" placeholder="Name or description" value={q} onChange={(e) => setQ(e.currentTarget.value)} w={280} />
      <ErrorNotice error={datasets.error} />
      {datasets.data && datasets.data.items.length === 0 && <Text>No datasets{q ? " match" : " yet"}.</Text>}
      {datasets.data && datasets.data.items.length > 0 && (
        <Table aria-label="Datasets" striped>
          <TableHead columns={["Name", "Description", "Latest", "Updated"]} />
          <Table.Tbody>
            {datasets.data.items.map((d) => (
              <Table.Tr key={d.id}>
                <Table.Td>
                  <Anchor component={Link} to={datasetUrl(d.name)}>
                    {d.name}
                  </Anchor>
                </Table.Td>
                <Table.Td>{d.description}</Table.Td>
                <Table.Td>v{d.latestVersion}</Table.Td>
                <Table.Td>{new Date(d.updatedAt).toLocaleString()}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      {canWrite && <Upload />}
    </Stack>
  );
}

export function DatasetDetail() {
  const name = useParams()["*"] ?? "";
  const pages = useCursorPages();
  // The version and the tag filter live in the address: a filtered view of a dataset is a link.
  const { filters, setFilter } = useUrlFilters(["version", "tag"] as const, pages.reset);
  const { version = null, tag } = filters;
  const versions = useQuery({
    queryKey: ["dataset", name, "versions"],
    queryFn: () => unwrap(api.GET("/api/v1/datasets/{name}/versions", { params: { path: { name }, query: { limit: 200 } } })),
  });
  const current = version ?? (versions.data?.items[0] ? String(versions.data.items[0].version) : null);
  const cases = useQuery({
    queryKey: ["dataset", name, "cases", current, tag, pages.cursor],
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/datasets/{name}/versions/{version}/cases", {
          params: { path: { name, version: Number(current) }, query: { cursor: pages.cursor, limit: 50, tag: tag ? [tag] : undefined } },
        }),
      ),
    enabled: current !== null,
    placeholderData: keepPreviousData,
  });
  const show = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));
  return (
    <Stack>
      <Title order={1} size="h2">
        {name}
      </Title>
      <ErrorNotice error={versions.error ?? cases.error} />
      <Group align="end">
        <Select
          label="Version"
          data={(versions.data?.items ?? []).map((v) => ({ value: String(v.version), label: `v${v.version} · ${v.caseCount} cases${v.commitMessage ? ` · ${v.commitMessage}` : ""}` }))}
          value={current}
          onChange={(v) => setFilter("version", v)}
          w={360}
        />
        <TextInput label="Tag" placeholder="Any tag" defaultValue={tag} onBlur={(e) => setFilter("tag", e.currentTarget.value.trim())} w={160} />
        {current && (
          <Group gap="xs">
            {(["csv", "jsonl"] as const).map((format) => (
              <Anchor key={format} href={`/api/v1/datasets/${encodeURIComponent(name)}/export?format=${format}&version=${current}`}>
                Export {format.toUpperCase()}
              </Anchor>
            ))}
          </Group>
        )}
      </Group>
      {cases.data && (
        <Text size="sm">
          {cases.data.caseCount} cases in v{cases.data.version}
          {tag ? ` · showing those tagged ${tag}` : ""}
        </Text>
      )}
      {cases.data && cases.data.items.length > 0 && (
        <Table aria-label="Cases" striped>
          <TableHead columns={["#", "Key", "Input", "Expected", "Tags"]} />
          <Table.Tbody>
            {cases.data.items.map((c) => (
              <Table.Tr key={c.id}>
                <Table.Td>{c.position + 1}</Table.Td>
                <Table.Td>{c.key}</Table.Td>
                <Table.Td>
                  <Code>{show(c.input)}</Code>
                </Table.Td>
                <Table.Td>{c.expected == null ? "—" : <Code>{show(c.expected)}</Code>}</Table.Td>
                <Table.Td>
                  {c.tags.map((t) => (
                    <Badge key={t} size="sm" variant="outline">
                      {t}
                    </Badge>
                  ))}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Pager pages={pages} nextCursor={cases.data?.nextCursor} />
    </Stack>
  );
}
