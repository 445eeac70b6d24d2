// getPrompt with a unit against a real server in a live experiment: each unit gets its own sticky arm, the cache
// never hands one unit's arm to another, a label without an experiment is fetched once for every unit, and runs
// recorded with the prompt carry the experiment and arm.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, clientOf, runsOf, startServer, unique, type RunningServer } from "./support.js";

let server: RunningServer;
const NAME = unique("sdk/exp");
const PLAIN = unique("sdk/plain");
let experimentId = "";

beforeAll(async () => {
  server = await startServer();
  await api(server.url, "POST", "/api/v1/prompts", { name: NAME, template: "v1 {{ x }}", labels: ["production"] });
  await api(server.url, "POST", `/api/v1/prompts/${NAME}/versions`, { template: "v2 {{ x }}" });
  await api(server.url, "POST", "/api/v1/prompts", { name: PLAIN, template: "plain", labels: ["production"] });
  const created = await api(server.url, "POST", "/api/v1/experiments", {
    name: "ts sdk",
    prompt: NAME,
    arms: [{ version: 1 }, { version: 2, name: "big", model: "gpt-4o" }],
  });
  experimentId = created.id;
  await api(server.url, "POST", `/api/v1/experiments/${experimentId}/start`);
});

afterAll(async () => {
  await server?.stop();
});

async function armOf(unit: string): Promise<{ arm: string; version: number }> {
  const body = await api(server.url, "GET", `/api/v1/prompts/${NAME}?label=production&unit=${encodeURIComponent(unit)}`);
  return { arm: body.experiment.arm, version: body.version.version };
}

describe("getPrompt with a unit", () => {
  it("serves each unit its own sticky arm and caches per unit", async () => {
    const po = clientOf(server);
    const units = Array.from({ length: 24 }, (_, i) => `user-${i}`);
    const got = new Map<string, Awaited<ReturnType<typeof po.getPrompt>>>();
    for (const unit of units) got.set(unit, await po.getPrompt(NAME, { label: "production", unit }));
    for (const [unit, prompt] of got) {
      const expected = await armOf(unit);
      expect(prompt).toMatchObject({ experiment: experimentId, arm: expected.arm, unit, version: expected.version });
      if (prompt.arm === "big") expect(prompt.modelConfig.model).toBe("gpt-4o");
    }
    expect(new Set([...got.values()].map((p) => p.arm))).toEqual(new Set(["control", "big"]));

    const fetches = po.stats.cache.fetches;
    for (const unit of units) expect((await po.getPrompt(NAME, { label: "production", unit })).arm).toBe(got.get(unit)?.arm);
    expect(po.stats.cache.fetches).toBe(fetches);
    const plain = await po.getPrompt(NAME, { label: "production" });
    expect(plain).toMatchObject({ experiment: null, arm: null, version: 1 });
    expect((await po.getPrompt(NAME, { version: 2, unit: "user-1" })).experiment).toBeNull();
    await expect(po.getPrompt(NAME, { label: "production", unit: "" })).rejects.toThrow(TypeError);

    // runs recorded with the prompt carry the experiment and arm
    const traceId = unique("trace");
    for (const unit of units.slice(0, 4)) {
      po.record({ model: "m", input: { prompt: unit }, status: "ok", traceId }, got.get(unit) ?? null);
    }
    expect(await po.flush()).toBe(true);
    const runs = await runsOf(server.url, { traceId });
    expect(runs).toHaveLength(4);
    for (const run of runs) {
      expect(run.experimentId).toBe(experimentId);
      expect(run.experimentArm).toBe(got.get(run.input.prompt)?.arm);
    }
    await po.shutdown();
  });

  it("fetches a label without an experiment once for every unit", async () => {
    const po = clientOf(server);
    const first = await po.getPrompt(PLAIN, { label: "production", unit: "a" });
    expect(first).toMatchObject({ experiment: null, version: 1 });
    const fetches = po.stats.cache.fetches;
    for (const unit of ["b", "c", "d"]) expect((await po.getPrompt(PLAIN, { label: "production", unit })).version).toBe(1);
    expect((await po.getPrompt(PLAIN, { label: "production" })).version).toBe(1);
    expect(po.stats.cache.fetches).toBe(fetches);
    await po.shutdown();
  });

  it("keeps at most unitCacheSize units", async () => {
    const po = clientOf(server, { unitCacheSize: 2 });
    for (const unit of ["u1", "u2", "u3"]) await po.getPrompt(NAME, { label: "production", unit });
    const fetches = po.stats.cache.fetches;
    await po.getPrompt(NAME, { label: "production", unit: "u3" });
    await po.getPrompt(NAME, { label: "production", unit: "u1" }); // dropped: fetched again
    expect(po.stats.cache.fetches).toBe(fetches + 1);
    await po.shutdown();
  });
});
