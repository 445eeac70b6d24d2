import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { MemoryRouter, Route, Routes, useLocation } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Schemas } from "../api/client";
import { MeProvider, type Me } from "../auth";
import { GlobalSearch } from "../components/GlobalSearch";
import { NearDuplicateWarning } from "../components/NearDuplicates";
import { Snippet } from "../components/Snippet";
import SearchPage from "../pages/SearchPage";
import { savedState } from "../paths";
import {
  apiQuery,
  isSearchShortcut,
  lastPage,
  matchSummary,
  percent,
  rangeText,
  readSearch,
  readThreshold,
  thresholdLabel,
  searchHref,
} from "../search";
import { network } from "./network";

const ME = {
  userId: "usr_1",
  name: "Ada",
  email: "ada@example.com",
  role: "admin",
  projectId: "prj_here",
  permissions: ["prompt:read", "prompt:write"],
} as unknown as Me;

function params(query: string) {
  return new URLSearchParams(query);
}

describe("readSearch / searchHref", () => {
  it("reads the defaults from an empty address", () => {
    expect(readSearch(params(""))).toEqual({ q: "", mode: "hybrid", tags: [], labels: [], allProjects: false, allVersions: false, page: 1 });
  });

  it("reads every filter, and falls back on a malformed mode or page", () => {
    const state = readSearch(params("q=+triage+&mode=semantic&tag=support&tag=support&tag=%20&label=production&project=*&allVersions=true&page=3"));
    expect(state).toEqual({
      q: "triage",
      mode: "semantic",
      tags: ["support"],
      labels: ["production"],
      allProjects: true,
      allVersions: true,
      page: 3,
    });
    expect(readSearch(params("q=x&mode=fuzzy&page=-2")).mode).toBe("hybrid");
    expect(readSearch(params("q=x&page=-2")).page).toBe(1);
    expect(readSearch(params("q=x&page=abc")).page).toBe(1);
    // The server pages no further than offset 1000.
    expect(apiQuery(readSearch(params("q=x&page=9999"))).offset).toBeLessThanOrEqual(1000);
  });

  it("writes q and mode always and the rest only when set, and reads back what it wrote", () => {
    expect(searchHref({ q: "refund policy" })).toBe("/search?q=refund+policy&mode=hybrid");
    const state = { q: "a&b", mode: "text" as const, tags: ["x", "y"], labels: ["prod"], allProjects: true, allVersions: true, page: 2 };
    const href = searchHref(state);
    expect(href).toBe("/search?q=a%26b&mode=text&tag=x&tag=y&label=prod&project=*&allVersions=true&page=2");
    expect(readSearch(new URL(href, "http://x").searchParams)).toEqual(state);
  });

  it("asks the API for a page by offset, every project with '*', and leaves unset filters out", () => {
    expect(apiQuery(readSearch(params("q=x")))).toEqual({ q: "x", mode: "hybrid", limit: 20, offset: 0 });
    expect(apiQuery(readSearch(params("q=x&tag=a&label=b&project=*&allVersions=true&page=3")))).toEqual({
      q: "x",
      mode: "hybrid",
      tag: ["a"],
      label: ["b"],
      project: ["*"],
      allVersions: true,
      limit: 20,
      offset: 40,
    });
  });
});

describe("wordings", () => {
  it("shows similarities as whole percentages, never a rounded-up 100%", () => {
    expect(percent(0.9412)).toBe("94%");
    expect(percent(0.996)).toBe("99%");
    expect(percent(1)).toBe("100%");
    expect(percent(-0.2)).toBe("0%");
  });

  it("counts pages and says which results are shown", () => {
    expect(lastPage(0)).toBe(1);
    expect(lastPage(20)).toBe(1);
    expect(lastPage(21)).toBe(2);
    expect(rangeText(1, 20, 45)).toBe("Results 1–20 of 45");
    expect(rangeText(3, 5, 45)).toBe("Results 41–45 of 45");
  });

  it("says which ranking found a result", () => {
    expect(matchSummary({ textRank: 1, semanticRank: 3, similarity: 0.781 })).toBe("Matched by words #1, meaning #3, 78% similar in meaning");
    expect(matchSummary({ textRank: null, semanticRank: 2, similarity: 0.5 })).toBe("Matched by meaning #2, 50% similar in meaning");
    expect(matchSummary({ textRank: null, semanticRank: null, similarity: null })).toBe("");
  });

  it("reads the duplicates threshold within what the server takes", () => {
    expect(readThreshold(null)).toBe(null);
    expect(readThreshold("0.35")).toBe(0.35);
    expect(readThreshold("0.01")).toBe(null);
    expect(readThreshold("1.5")).toBe(null);
    expect(readThreshold("abc")).toBe(null);
    expect(readThreshold("")).toBe(null);
    expect(thresholdLabel(0.27, 0.27)).toBe("0.27 (default)");
    expect(thresholdLabel(0.2, 0.27)).toBe("0.20 (loose)");
    expect(thresholdLabel(0.35, 0.27)).toBe("0.35 (strict)");
    expect(thresholdLabel(0.7, 0.27)).toBe("0.70 (very strict)");
  });

  it("trusts only a well-formed saved state from history", () => {
    const saved = { name: "a", version: 2, nearDuplicates: [] };
    expect(savedState({ saved })).toEqual(saved);
    expect(savedState(null)).toBeNull();
    expect(savedState({ saved: { name: "a", version: "2", nearDuplicates: [] } })).toBeNull();
    expect(savedState({ other: 1 })).toBeNull();
  });
});

describe("isSearchShortcut", () => {
  const key = (k: string, target: EventTarget | null, mods: Partial<{ ctrlKey: boolean; metaKey: boolean; altKey: boolean }> = {}) => ({
    key: k,
    ctrlKey: false,
    metaKey: false,
    altKey: false,
    target,
    ...mods,
  });

  it("takes '/' outside text fields and Ctrl+K or ⌘K anywhere", () => {
    const input = document.createElement("input");
    const editor = document.createElement("div");
    editor.setAttribute("contenteditable", "true");
    const inside = document.createElement("span");
    editor.appendChild(inside);
    document.body.append(input, editor);
    expect(isSearchShortcut(key("/", document.body))).toBe(true);
    expect(isSearchShortcut(key("/", input))).toBe(false);
    expect(isSearchShortcut(key("/", inside))).toBe(false);
    const checkbox = document.createElement("input");
    checkbox.type = "checkbox";
    expect(isSearchShortcut(key("/", checkbox))).toBe(true);
    expect(isSearchShortcut(key("/", document.body, { ctrlKey: true }))).toBe(false);
    expect(isSearchShortcut(key("k", input, { ctrlKey: true }))).toBe(true);
    expect(isSearchShortcut(key("K", input, { metaKey: true }))).toBe(true);
    expect(isSearchShortcut(key("k", document.body))).toBe(false);
    expect(isSearchShortcut(key("k", document.body, { ctrlKey: true, altKey: true }))).toBe(false);
    input.remove();
    editor.remove();
  });
});

describe("Snippet", () => {
  it("marks matched words and shows markup as text", () => {
    const { container } = render(
      <MantineProvider>
        <Snippet
          segments={[
            { text: "Read the ", match: false },
            { text: "ticket", match: true },
            { text: " <b>now</b> ", match: false },
            { text: "<img src=x onerror=alert(1)>", match: true },
          ]}
        />
      </MantineProvider>,
    );
    const marks = container.querySelectorAll("mark");
    expect([...marks].map((m) => m.textContent)).toEqual(["ticket", "<img src=x onerror=alert(1)>"]);
    expect(container.querySelector("b")).toBeNull();
    expect(container.querySelector("img")).toBeNull();
    expect(screen.getByTestId("snippet")).toHaveTextContent("Read the ticket <b>now</b> <img src=x onerror=alert(1)>");
  });
});

describe("NearDuplicateWarning", () => {
  it("lists each near-duplicate as 'N% similar to name@version' with a link, and can be dismissed", async () => {
    const onClose = vi.fn();
    render(
      <MantineProvider>
        <MemoryRouter>
          <NearDuplicateWarning
            name="support/new"
            version={1}
            duplicates={[{ promptId: "p1", name: "support/triage", version: 3, versionId: "v3", similarity: 0.9412, duplicateScore: 0.61 }]}
            onClose={onClose}
          />
        </MemoryRouter>
      </MantineProvider>,
    );
    const warning = screen.getByTestId("near-duplicates");
    expect(within(warning).getByRole("listitem")).toHaveTextContent("94% similar to support/triage@3");
    expect(within(warning).getByRole("link", { name: "support/triage@3" })).toHaveAttribute("href", "/prompts/support/triage");
    await userEvent.click(screen.getByRole("button", { name: "Dismiss the duplicate warning" }));
    expect(onClose).toHaveBeenCalledOnce();
  });

  it("shows nothing without near-duplicates", () => {
    render(
      <MantineProvider>
        <MemoryRouter>
          <NearDuplicateWarning name="a" version={1} duplicates={[]} onClose={() => {}} />
        </MemoryRouter>
      </MantineProvider>,
    );
    expect(screen.queryByTestId("near-duplicates")).toBeNull();
  });
});

function Address() {
  const location = useLocation();
  return <output data-testid="address">{location.pathname + location.search}</output>;
}

function withApp(children: ReactNode, at: string) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return (
    <MantineProvider>
      <QueryClientProvider client={client}>
        <MeProvider me={ME}>
          <MemoryRouter initialEntries={[at]}>
            {children}
            <Routes>
              <Route path="*" element={<Address />} />
            </Routes>
          </MemoryRouter>
        </MeProvider>
      </QueryClientProvider>
    </MantineProvider>
  );
}

describe("GlobalSearch", () => {
  it("is focused by '/' and Ctrl+K, but '/' typed in another field stays there", async () => {
    render(
      withApp(
        <>
          <GlobalSearch />
          <input aria-label="Other field" />
        </>,
        "/",
      ),
    );
    const box = screen.getByRole("searchbox", { name: "Search prompts" });
    const other = screen.getByRole("textbox", { name: "Other field" });
    await userEvent.click(other);
    await userEvent.keyboard("/");
    expect(other).toHaveFocus();
    expect(other).toHaveValue("/");
    await userEvent.keyboard("{Control>}k{/Control}");
    expect(box).toHaveFocus();
    box.blur();
    fireEvent.keyDown(document.body, { key: "/" });
    expect(box).toHaveFocus();
    await userEvent.keyboard("{Escape}");
    expect(box).not.toHaveFocus();
  });

  it("opens the results page on Enter from another page", async () => {
    render(withApp(<GlobalSearch />, "/prompts/a"));
    const box = screen.getByRole("searchbox", { name: "Search prompts" });
    await userEvent.type(box, "refund policy");
    // Typing elsewhere than the results page does not navigate by itself.
    await new Promise((r) => setTimeout(r, 400));
    expect(screen.getByTestId("address")).toHaveTextContent("/prompts/a");
    await userEvent.keyboard("{Enter}");
    expect(screen.getByTestId("address")).toHaveTextContent("/search?q=refund+policy&mode=hybrid");
  });

  it("on the results page, follows the address and updates it as you type (debounced), keeping mode and filters", async () => {
    render(withApp(<GlobalSearch />, "/search?q=old&mode=text&tag=support&page=3"));
    const box = screen.getByRole("searchbox", { name: "Search prompts" });
    expect(box).toHaveValue("old");
    await userEvent.clear(box);
    await userEvent.type(box, "triage");
    expect(screen.getByTestId("address")).toHaveTextContent("page=3");
    await waitFor(() => expect(screen.getByTestId("address")).toHaveTextContent("/search?q=triage&mode=text&tag=support"));
    expect(screen.getByTestId("address")).not.toHaveTextContent("page=");
    expect(box).toHaveValue("triage");
  });
});

const HIT: Schemas["SearchHitOut"] = {
  promptId: "prm_1",
  name: "support/triage",
  projectId: "prj_other",
  project: "billing",
  version: 3,
  versionId: "ver_3",
  description: "Sort incoming tickets",
  tags: ["support"],
  labels: ["production"],
  model: "",
  updatedAt: "2026-01-01T00:00:00Z",
  score: 1.9,
  textRank: 1,
  semanticRank: 2,
  similarity: 0.78,
  snippet: [
    { text: "Read the ", match: false },
    { text: "ticket", match: true },
  ],
};

/** Answers the page's requests at the network edge (see `network` above) and records what was asked. */
function answer(status: number, body: unknown) {
  const asked: URL[] = [];
  network.handler = async (request) => {
    asked.push(new URL(request.url));
    return new Response(JSON.stringify(body), { status, headers: { "Content-Type": status < 400 ? "application/json" : "application/problem+json" } });
  };
  return asked;
}

describe("SearchPage", () => {
  afterEach(() => {
    network.handler = null;
  });

  it("asks for the search in the address and shows results with highlights, project and labels", async () => {
    const asked = answer(200, { query: "ticket", mode: "hybrid", total: 25, items: [HIT] });
    render(withApp(<SearchPage />, "/search?q=ticket&mode=hybrid&tag=support&project=*&page=2"));
    const results = await screen.findByRole("list", { name: "Search results" });
    expect(asked[0].pathname).toBe("/api/v1/search");
    expect(asked[0].searchParams.get("q")).toBe("ticket");
    expect(asked[0].searchParams.getAll("tag")).toEqual(["support"]);
    expect(asked[0].searchParams.getAll("project")).toEqual(["*"]);
    expect(asked[0].searchParams.get("offset")).toBe("20");
    const item = within(results).getByRole("listitem");
    expect(within(item).getByRole("link", { name: "support/triage" })).toHaveAttribute("href", "/prompts/support/triage");
    expect(item).toHaveTextContent("in project billing");
    expect(item).toHaveTextContent("Matched by words #1, meaning #2, 78% similar in meaning");
    expect(item.querySelector("mark")).toHaveTextContent("ticket");
    expect(screen.getByRole("switch", { name: "All my projects" })).toBeChecked();
    expect(screen.getByText("Results 21–21 of 25")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Next page" })).toBeDisabled();
    await userEvent.click(screen.getByRole("button", { name: "Previous page" }));
    expect(screen.getByTestId("address")).toHaveTextContent("/search?q=ticket&mode=hybrid&tag=support&project=*");
    expect(screen.getByTestId("address")).not.toHaveTextContent("page=");
  });

  it("switches mode through the address and offers a way out of an empty result", async () => {
    answer(200, { query: "zebra", mode: "text", total: 0, items: [] });
    render(withApp(<SearchPage />, "/search?q=zebra&mode=text"));
    await screen.findByTestId("no-results");
    expect(screen.getByText("No prompt matches “zebra”.")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Search by meaning instead" }));
    expect(screen.getByTestId("address")).toHaveTextContent("/search?q=zebra&mode=semantic");
    await userEvent.click(screen.getByRole("radio", { name: "Words" }));
    expect(screen.getByTestId("address")).toHaveTextContent("/search?q=zebra&mode=text");
  });

  it("shows the server's problem when the search fails, and asks nothing without a query", async () => {
    const asked = answer(422, { detail: "q: String should have at most 1000 characters", status: 422, code: "validation_error" });
    const { unmount } = render(withApp(<SearchPage />, "/search?q=x"));
    expect(await screen.findByRole("alert")).toHaveTextContent("q: String should have at most 1000 characters");
    unmount();
    asked.length = 0;
    render(withApp(<SearchPage />, "/search"));
    expect(screen.getByTestId("search-empty")).toBeInTheDocument();
    await act(() => new Promise((r) => setTimeout(r, 50)));
    expect(asked).toEqual([]);
  });
});
