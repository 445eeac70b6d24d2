import {
  ActionIcon,
  AppShell,
  Badge,
  Button,
  Group,
  NavLink,
  Select,
  Text,
  Tooltip,
  VisuallyHidden,
  useMantineColorScheme,
} from "@mantine/core";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { type ReactNode } from "react";
import { Link, useLocation } from "react-router";
import { api, setCurrentProject, unwrap } from "../api/client";
import { awaitsDecisionOf } from "../approvals";
import { useMe, useSignOut } from "../auth";
import { GlobalSearch } from "./GlobalSearch";

// Each page with the permission it needs (links a role cannot use are not shown; the server still checks).
const NAV = [
  { to: "/", label: "Prompts", permission: "prompt:read" },
  { to: "/playground", label: "Playground", permission: "playground:run" },
  { to: "/datasets", label: "Datasets", permission: "dataset:read" },
  { to: "/evals", label: "Evaluations", permission: "eval:read" },
  { to: "/optimize", label: "Optimize", permission: "prompt:optimize" },
  { to: "/annotations", label: "Annotation queue", permission: "feedback:read" },
  { to: "/runs", label: "Runs", permission: "run:read" },
  { to: "/dashboards", label: "Dashboards", permission: "run:read" },
  { to: "/monitoring", label: "Monitoring", permission: "run:read" },
  { to: "/alerts", label: "Alerts", permission: "alert:read" },
  { to: "/experiments", label: "Experiments", permission: "experiment:read" },
  { to: "/approvals", label: "Approvals", permission: "approval:read" },
  { to: "/audit", label: "Audit log", permission: "audit:read" },
  { to: "/settings", label: "Settings", permission: "member:read" },
];

function ProjectSwitcher() {
  const me = useMe();
  const client = useQueryClient();
  const projects = useQuery({
    queryKey: ["projects"],
    queryFn: () => unwrap(api.GET("/api/v1/projects")),
  });
  const items = (projects.data ?? []).map((p) => ({ value: p.id, label: p.name }));
  if (items.length < 2) {
    const name = items.find((p) => p.value === me.projectId)?.label;
    return name ? <Text size="sm">Project: {name}</Text> : null;
  }
  return (
    <Select
      aria-label="Project"
      size="xs"
      data={items}
      value={me.projectId}
      allowDeselect={false}
      onChange={(value) => {
        setCurrentProject(value);
        void client.invalidateQueries();
      }}
    />
  );
}

/** How many open approval requests wait for the signed-in reviewer's decision (one small query, refreshed each
 * minute and after every decision). */
function ApprovalCount() {
  const me = useMe();
  const open = useQuery({
    queryKey: ["approvals", "awaiting"],
    queryFn: () => unwrap(api.GET("/api/v1/approvals", { params: { query: { status: "open", limit: 100 } } })),
    enabled: me.permissions.includes("approval:review"),
    refetchInterval: 60_000,
    staleTime: 30_000,
  });
  const count = (open.data?.items ?? []).filter((r) => awaitsDecisionOf(r, me)).length;
  if (count === 0) return null;
  return (
    <Badge size="sm" color="blue.9" data-testid="approvals-waiting">
      {count}
      <VisuallyHidden> waiting for your decision</VisuallyHidden>
    </Badge>
  );
}

export function Shell({ children }: { children: ReactNode }) {
  const me = useMe();
  const signOut = useSignOut();
  const location = useLocation();
  const { colorScheme, toggleColorScheme } = useMantineColorScheme();
  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 200, breakpoint: "sm" }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between">
          <Group gap="lg" wrap="nowrap">
            <Text fw={700} component={Link} to="/">
              PromptOps
            </Text>
            {me.permissions.includes("prompt:read") && <GlobalSearch />}
          </Group>
          <Group gap="sm">
            <ProjectSwitcher />
            <Text size="sm" data-testid="whoami">
              {me.name}
            </Text>
            <Badge variant="light">{me.role}</Badge>
            <Tooltip label={colorScheme === "dark" ? "Light theme" : "Dark theme"}>
              <ActionIcon
                variant="default"
                aria-label={colorScheme === "dark" ? "Switch to the light theme" : "Switch to the dark theme"}
                onClick={toggleColorScheme}
              >
                {colorScheme === "dark" ? "☀" : "☾"}
              </ActionIcon>
            </Tooltip>
            <Button size="xs" variant="default" onClick={() => void signOut()}>
              Sign out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Main">
        {NAV.filter((item) => me.permissions.includes(item.permission)).map((item) => (
          <NavLink
            key={item.to}
            component={Link}
            to={item.to}
            label={item.label}
            rightSection={item.to === "/approvals" ? <ApprovalCount /> : undefined}
            active={item.to === "/" ? location.pathname === "/" || /^\/(prompts|search)(\/|$)/.test(location.pathname) : location.pathname.startsWith(item.to)}
          />
        ))}
      </AppShell.Navbar>
      <AppShell.Main>{children}</AppShell.Main>
    </AppShell>
  );
}
