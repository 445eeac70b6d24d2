// Project settings: members and their roles, API keys (the secret is shown once, with a copy button) and
// provider connections (keys are write-only: the server shows only a hint), model prices, and which labels are
// protected and how lint applies (settings/ProjectPolicy.tsx), and the embedding model search uses
// (settings/SearchEmbeddings.tsx). Each tab is shown to the roles
// that can read it; write controls to the roles that can change it.
import {
  Badge,
  Button,
  Code,
  CopyButton,
  Group,
  Modal,
  PasswordInput,
  Select,
  Stack,
  Table,
  Tabs,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useSearchParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { useCan, useMe } from "../auth";
import { ErrorNotice } from "../components/ErrorNotice";
import { TableHead } from "../components/TableHead";
import { LabelAndLintPolicy, ModelPrices } from "./settings/ProjectPolicy";
import { SearchEmbeddings } from "./settings/SearchEmbeddings";
import { TwoFactor } from "./settings/TwoFactor";

const ROLES: Schemas["MeOut"]["role"][] = ["Viewer", "QAAnalyst", "PromptEngineer", "PromptOpsAdmin", "ComplianceOfficer"];
type Role = Schemas["MeOut"]["role"];

function when(iso?: string | null) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function Members() {
  const canManage = useCan("member:manage");
  const client = useQueryClient();
  const members = useQuery({ queryKey: ["members"], queryFn: () => unwrap(api.GET("/api/v1/members")) });
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("Viewer");
  const refresh = () => client.invalidateQueries({ queryKey: ["members"] });
  const add = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/members", { body: { email, role, password: password || undefined } })),
    onSuccess: async () => {
      setEmail("");
      setPassword("");
      await refresh();
    },
  });
  const change = useMutation({
    mutationFn: (v: { userId: string; role: Role }) =>
      unwrap(api.PATCH("/api/v1/members/{user_id}", { params: { path: { user_id: v.userId } }, body: { role: v.role } })),
    onSuccess: refresh,
  });
  const remove = useMutation({
    mutationFn: (userId: string) => unwrap(api.DELETE("/api/v1/members/{user_id}", { params: { path: { user_id: userId } } })),
    onSuccess: refresh,
  });
  return (
    <Stack>
      <ErrorNotice error={members.error ?? change.error ?? remove.error} />
      <Table aria-label="Members">
        <TableHead columns={["Email", "Role", "Since", ""]} />
        <Table.Tbody>
          {(members.data ?? []).map((m) => (
            <Table.Tr key={m.userId}>
              <Table.Td>{m.email}</Table.Td>
              <Table.Td>
                {canManage ? (
                  <Select aria-label={`Role of ${m.email}`} data={ROLES} value={m.role} allowDeselect={false} onChange={(r) => r && change.mutate({ userId: m.userId, role: r as Role })} w={200} />
                ) : (
                  m.role
                )}
              </Table.Td>
              <Table.Td>{when(m.createdAt)}</Table.Td>
              <Table.Td>
                {canManage && (
                  <Button size="compact-sm" variant="default" onClick={() => window.confirm(`Remove ${m.email} from the project?`) && remove.mutate(m.userId)}>
                    Remove
                  </Button>
                )}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {canManage && (
        <form
          onSubmit={(e: FormEvent) => {
            e.preventDefault();
            add.mutate();
          }}
          aria-label="Add a member"
        >
          <Group align="end">
            <TextInput label="Email" type="email" required value={email} onChange={(e) => setEmail(e.currentTarget.value)} />
            <Select label="Role" data={ROLES} value={role} allowDeselect={false} onChange={(r) => setRole((r ?? "Viewer") as Role)} w={200} />
            <PasswordInput label="Password (new users)" value={password} onChange={(e) => setPassword(e.currentTarget.value)} />
            <Button type="submit" loading={add.isPending}>
              Add member
            </Button>
          </Group>
          <ErrorNotice error={add.error} title="The member was not added" />
        </form>
      )}
    </Stack>
  );
}

function ApiKeys() {
  const canManage = useCan("apikey:manage");
  const client = useQueryClient();
  const keys = useQuery({ queryKey: ["api-keys"], queryFn: () => unwrap(api.GET("/api/v1/api-keys")) });
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("Viewer");
  const [created, setCreated] = useState<Schemas["ApiKeyCreatedOut"] | null>(null);
  const refresh = () => client.invalidateQueries({ queryKey: ["api-keys"] });
  const create = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/api-keys", { body: { name, role } })),
    onSuccess: async (key) => {
      setCreated(key);
      setName("");
      await refresh();
    },
  });
  const revoke = useMutation({
    mutationFn: (keyId: string) => unwrap(api.DELETE("/api/v1/api-keys/{key_id}", { params: { path: { key_id: keyId } } })),
    onSuccess: refresh,
  });
  return (
    <Stack>
      <ErrorNotice error={keys.error ?? revoke.error} />
      <Table aria-label="API keys">
        <TableHead columns={["Name", "Prefix", "Role", "Last used", "State", ""]} />
        <Table.Tbody>
          {(keys.data ?? []).map((k) => (
            <Table.Tr key={k.id}>
              <Table.Td>{k.name}</Table.Td>
              <Table.Td>
                <Code>{k.prefix}…</Code>
              </Table.Td>
              <Table.Td>{k.role}</Table.Td>
              <Table.Td>{when(k.lastUsedAt)}</Table.Td>
              <Table.Td>{k.revokedAt ? <Badge color="gray.7">revoked</Badge> : <Badge color="#1e6b2e">active</Badge>}</Table.Td>
              <Table.Td>
                {canManage && !k.revokedAt && (
                  <Button size="compact-sm" variant="default" onClick={() => window.confirm(`Revoke the key ${k.name}? Programs using it stop working.`) && revoke.mutate(k.id)}>
                    Revoke
                  </Button>
                )}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {canManage && (
        <form
          onSubmit={(e: FormEvent) => {
            e.preventDefault();
            create.mutate();
          }}
          aria-label="Create an API key"
        >
          <Group align="end">
            <TextInput label="Key name" required value={name} onChange={(e) => setName(e.currentTarget.value)} />
            <Select label="Key role" data={ROLES} value={role} allowDeselect={false} onChange={(r) => setRole((r ?? "Viewer") as Role)} w={200} />
            <Button type="submit" loading={create.isPending}>
              Create key
            </Button>
          </Group>
          <ErrorNotice error={create.error} title="The key was not created" />
        </form>
      )}
      <Modal opened={created !== null} onClose={() => setCreated(null)} title="Your new API key">
        <Stack>
          <Text>Copy it now: it is shown only this once and the server keeps only its hash.</Text>
          <Code block data-testid="new-key">
            {created?.key}
          </Code>
          <Group justify="flex-end">
            <CopyButton value={created?.key ?? ""}>
              {({ copied, copy }) => <Button onClick={copy}>{copied ? "Copied" : "Copy key"}</Button>}
            </CopyButton>
            <Button variant="default" onClick={() => setCreated(null)}>
              Done
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Stack>
  );
}

function Providers() {
  const canManage = useCan("provider:manage");
  const client = useQueryClient();
  const connections = useQuery({ queryKey: ["providers"], queryFn: () => unwrap(api.GET("/api/v1/providers")) });
  const [name, setName] = useState("");
  const [type, setType] = useState<Schemas["ConnectionIn"]["type"]>("openai");
  const [baseUrl, setBaseUrl] = useState("");
  const [apiKey, setApiKey] = useState("");
  const refresh = () => client.invalidateQueries({ queryKey: ["providers"] });
  const add = useMutation({
    mutationFn: () =>
      unwrap(api.POST("/api/v1/providers", { body: { name, type, baseUrl: baseUrl || undefined, apiKey: apiKey || undefined } })),
    onSuccess: async () => {
      setName("");
      setApiKey("");
      setBaseUrl("");
      await refresh();
    },
  });
  const remove = useMutation({
    mutationFn: (n: string) => unwrap(api.DELETE("/api/v1/providers/{name}", { params: { path: { name: n } } })),
    onSuccess: refresh,
  });
  return (
    <Stack>
      <ErrorNotice error={connections.error ?? remove.error} />
      <Table aria-label="Provider connections">
        <TableHead columns={["Name", "Type", "Base URL", "Key", ""]} />
        <Table.Tbody>
          {(connections.data ?? []).map((c) => (
            <Table.Tr key={c.name}>
              <Table.Td>
                {c.name} {c.builtIn && <Badge color="gray.7">built in</Badge>}
              </Table.Td>
              <Table.Td>{c.type}</Table.Td>
              <Table.Td>{c.baseUrl ?? "—"}</Table.Td>
              <Table.Td>{c.hasApiKey ? <Code>…{c.apiKeyHint}</Code> : "—"}</Table.Td>
              <Table.Td>
                {canManage && !c.builtIn && (
                  <Button size="compact-sm" variant="default" onClick={() => window.confirm(`Delete the connection ${c.name}?`) && remove.mutate(c.name)}>
                    Delete
                  </Button>
                )}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {canManage && (
        <form
          onSubmit={(e: FormEvent) => {
            e.preventDefault();
            add.mutate();
          }}
          aria-label="Add a provider connection"
        >
          <Group align="end">
            <TextInput label="Connection name" required value={name} onChange={(e) => setName(e.currentTarget.value)} />
            <Select label="Type" data={["openai", "azure_openai", "anthropic", "huggingface"]} value={type} allowDeselect={false} onChange={(t) => setType((t ?? "openai") as Schemas["ConnectionIn"]["type"])} w={160} />
            <TextInput label="Base URL" placeholder="default for the type" value={baseUrl} onChange={(e) => setBaseUrl(e.currentTarget.value)} />
            <PasswordInput label="API key (write-only)" value={apiKey} onChange={(e) => setApiKey(e.currentTarget.value)} />
            <Button type="submit" loading={add.isPending}>
              Add connection
            </Button>
          </Group>
          <ErrorNotice error={add.error} title="The connection was not added" />
        </form>
      )}
    </Stack>
  );
}

export default function SettingsPage() {
  const [params, setParams] = useSearchParams();
  const tabs = [
    { value: "members", label: "Members", allowed: useCan("member:read"), body: <Members /> },
    { value: "keys", label: "API keys", allowed: useCan("apikey:read"), body: <ApiKeys /> },
    { value: "providers", label: "Providers", allowed: useCan("provider:manage"), body: <Providers /> },
    { value: "models", label: "Model prices", allowed: useCan("prompt:read"), body: <ModelPrices /> },
    { value: "policy", label: "Labels and lint", allowed: useCan("project:read"), body: <LabelAndLintPolicy /> },
    { value: "search", label: "Search", allowed: useCan("prompt:read"), body: <SearchEmbeddings /> },
    { value: "security", label: "My sign-in", allowed: useMe().kind === "user", body: <TwoFactor /> },
  ].filter((t) => t.allowed);
  const tab = params.get("tab") ?? tabs[0]?.value ?? "members";
  return (
    <Stack>
      <Title order={1} size="h2">
        Settings
      </Title>
      <Tabs value={tab} onChange={(v) => setParams({ tab: v ?? "members" }, { replace: true })}>
        <Tabs.List>
          {tabs.map((t) => (
            <Tabs.Tab key={t.value} value={t.value}>
              {t.label}
            </Tabs.Tab>
          ))}
        </Tabs.List>
        {tabs.map((t) => (
          <Tabs.Panel key={t.value} value={t.value} pt="md">
            {tab === t.value && t.body}
          </Tabs.Panel>
        ))}
      </Tabs>
    </Stack>
  );
}
