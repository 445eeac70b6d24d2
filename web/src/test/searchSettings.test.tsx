import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { afterEach, describe, expect, it } from "vitest";
import { MeProvider, type Me } from "../auth";
import { SearchEmbeddings, embeddingModelText } from "../pages/settings/SearchEmbeddings";
import { network } from "./network";

const ADMIN = {
  userId: "usr_1",
  name: "Ada",
  email: "ada@example.com",
  role: "PromptOpsAdmin",
  projectId: "prj_here",
  permissions: ["prompt:read", "provider:manage"],
} as unknown as Me;
const VIEWER = { ...ADMIN, role: "Viewer", permissions: ["prompt:read"] } as unknown as Me;

const DEPLOYMENT = {
  projectId: "prj_here",
  source: "deployment",
  connection: null,
  model: "minilm-l6-v2",
  duplicateScore: 0.27,
  minSimilarity: 0.35,
  dimensions: 384,
  documentsWaiting: 0,
};
const PROVIDER = { ...DEPLOYMENT, source: "provider", connection: "openai", model: "text-embedding-3-small", duplicateScore: 0.6, minSimilarity: 0.4, dimensions: 1536, documentsWaiting: 12 };
const CONNECTIONS = [
  { name: "local", type: "local", builtIn: true, hasApiKey: false },
  { name: "openai", type: "openai", builtIn: false, hasApiKey: true },
  { name: "claude", type: "anthropic", builtIn: false, hasApiKey: true },
];

function withApp(children: ReactNode, me: Me) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return (
    <MantineProvider>
      <QueryClientProvider client={client}>
        <MeProvider me={me}>{children}</MeProvider>
      </QueryClientProvider>
    </MantineProvider>
  );
}

function json(body: unknown, status = 200) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": status < 400 ? "application/json" : "application/problem+json" } });
}

describe("SearchEmbeddings", () => {
  afterEach(() => {
    network.handler = null;
    network.seen.length = 0;
  });

  it("names the model in use", () => {
    expect(embeddingModelText(DEPLOYMENT)).toBe("minilm-l6-v2 (the server's offline model)");
    expect(embeddingModelText(PROVIDER)).toBe("openai/text-embedding-3-small");
  });

  it("sets a provider model with its thresholds, then shows the versions waiting for vectors", async () => {
    let current: Record<string, unknown> = DEPLOYMENT;
    const sent: unknown[] = [];
    network.handler = async (request) => {
      const url = new URL(request.url);
      if (url.pathname === "/api/v1/providers") return json(CONNECTIONS);
      if (request.method === "PUT") {
        sent.push(await request.json());
        current = PROVIDER;
      }
      return json(current);
    };
    render(withApp(<SearchEmbeddings />, ADMIN));
    expect(await screen.findByText(/the server's offline model/)).toBeTruthy();
    const user = userEvent.setup();
    await user.click(await screen.findByRole("combobox", { name: "Connection" }));
    // only connections that can embed are offered
    expect(screen.queryByRole("option", { name: "claude", hidden: true })).toBeNull();
    await user.click(await screen.findByRole("option", { name: "openai", hidden: true }));
    await user.type(screen.getByRole("textbox", { name: "Embedding model" }), "text-embedding-3-small");
    await user.type(screen.getByRole("textbox", { name: "Near-duplicate from" }), "0.6");
    await user.click(screen.getByRole("button", { name: "Use this model" }));
    await waitFor(() => expect(sent).toEqual([{ connection: "openai", model: "text-embedding-3-small", duplicateScore: 0.6, minSimilarity: null }]));
    expect(await screen.findByText("openai/text-embedding-3-small")).toBeTruthy();
    expect(screen.getByText(/12 versions wait for their vectors/)).toBeTruthy();
    expect(screen.getByRole("button", { name: "Use the server's model" })).toBeTruthy();
  });

  it("shows the server's refusal and keeps the form", async () => {
    network.handler = async (request) => {
      const url = new URL(request.url);
      if (url.pathname === "/api/v1/providers") return json(CONNECTIONS);
      if (request.method === "PUT")
        return json({ status: 401, code: "provider_auth_failed", title: "Provider rejected the key", detail: "Incorrect API key provided" }, 401);
      return json(DEPLOYMENT);
    };
    render(withApp(<SearchEmbeddings />, ADMIN));
    const user = userEvent.setup();
    await user.click(await screen.findByRole("combobox", { name: "Connection" }));
    await user.click(await screen.findByRole("option", { name: "openai", hidden: true }));
    await user.type(screen.getByRole("textbox", { name: "Embedding model" }), "text-embedding-3-small");
    await user.click(screen.getByRole("button", { name: "Use this model" }));
    expect(await screen.findByText(/Incorrect API key provided/)).toBeTruthy();
    expect((screen.getByRole("textbox", { name: "Embedding model" }) as HTMLInputElement).value).toBe("text-embedding-3-small");
  });

  it("shows a viewer the model and no form", async () => {
    network.handler = async () => json(PROVIDER);
    render(withApp(<SearchEmbeddings />, VIEWER));
    expect(await screen.findByText("openai/text-embedding-3-small")).toBeTruthy();
    expect(screen.queryByRole("form", { name: "Search with a provider model" })).toBeNull();
    expect(network.seen.some((r) => new URL(r.url).pathname === "/api/v1/providers")).toBe(false);
  });
});
