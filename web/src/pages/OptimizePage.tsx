// The optimizer (/optimize): three tabs kept in the address so each is a link. `?tab=optimize` (default) starts
// and lists optimizations, `?tab=generate` writes variants for a task, `?tab=refine` improves a version from
// notes; `&prompt=<name or ref>` fills the prompt field of the tab (see optimizeUrl in paths.ts).
import { Stack, Tabs, Text, Title } from "@mantine/core";
import { useSearchParams } from "react-router";
import { useCan } from "../auth";
import { GenerateTab } from "./optimize/GenerateTab";
import { OptimizeTab } from "./optimize/OptimizeTab";
import { RefineTab } from "./optimize/RefineTab";

const TABS = ["optimize", "generate", "refine"];

export default function OptimizePage() {
  const [params, setParams] = useSearchParams();
  const tab = TABS.includes(params.get("tab") ?? "") ? params.get("tab")! : "optimize";
  const prompt = params.get("prompt") ?? "";
  const canOptimize = useCan("prompt:optimize");
  const select = (value: string | null) => {
    const next = new URLSearchParams(params);
    next.set("tab", value ?? "optimize");
    setParams(next, { replace: true });
  };
  const readOnly = <Text c="dimmed">Your role cannot generate or refine prompts (prompt:optimize).</Text>;
  return (
    <Stack>
      <Title order={1} size="h2">
        Optimize
      </Title>
      <Tabs value={tab} onChange={select}>
        <Tabs.List>
          <Tabs.Tab value="optimize">Optimize</Tabs.Tab>
          <Tabs.Tab value="generate">Generate</Tabs.Tab>
          <Tabs.Tab value="refine">Refine</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="optimize" pt="md">
          {tab === "optimize" && <OptimizeTab prompt={prompt} />}
        </Tabs.Panel>
        <Tabs.Panel value="generate" pt="md">
          {canOptimize ? <GenerateTab prompt={prompt} /> : readOnly}
        </Tabs.Panel>
        <Tabs.Panel value="refine" pt="md">
          {canOptimize ? <RefineTab prompt={prompt} /> : readOnly}
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}
