import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, within } from "@testing-library/react";
import type { ReactNode } from "react";
import { MemoryRouter } from "react-router";
import { describe, expect, it } from "vitest";
import type { Schemas } from "../api/client";
import { SseParser, readEvents, streamPlayground } from "../api/sse";
import { MeProvider, type Me } from "../auth";
import PlaygroundPage, { variablesOf } from "../pages/PlaygroundPage";
import { columnFrom, describeColumn, outputsReducer, targetOf } from "../pages/playground/model";
import { ResultColumn } from "../pages/playground/ResultColumn";

describe("SseParser", () => {
  it("completes an event only at its blank line, whatever the chunk boundaries", () => {
    const parser = new SseParser();
    expect(parser.push("event: del")).toEqual([]);
    expect(parser.push('ta\ndata: {"index":0,')).toEqual([]);
    expect(parser.push('"text":"Hi"}\n')).toEqual([]);
    expect(parser.push("\nevent: end\ndata: {}\n\n")).toEqual([
      { event: "delta", data: '{"index":0,"text":"Hi"}' },
      { event: "end", data: "{}" },
    ]);
  });

  it("joins multi-line data with newlines, skips comments, defaults the name and handles CRLF split across chunks", () => {
    const parser = new SseParser();
    const events = [
      ...parser.push(": keep-alive\r\ndata: first line\r"),
      ...parser.push("\ndata:second line\r\n\r"),
      ...parser.push("\nevent: x\ndata\n\n"),
    ];
    expect(events).toEqual([
      { event: "message", data: "first line\nsecond line" },
      { event: "x", data: "" },
    ]);
  });

  it("drops an event the stream never finished and resets the name after each event", () => {
    const parser = new SseParser();
    expect(parser.push("event: result\n\ndata: 1\n\n")).toEqual([{ event: "message", data: "1" }]);
    expect(parser.push("event: start\ndata: {")).toEqual([]);
  });
});

describe("readEvents", () => {
  it("decodes UTF-8 split between byte chunks", async () => {
    const bytes = new TextEncoder().encode('event: delta\ndata: {"text":"café ✓"}\n\n');
    const cut = bytes.indexOf(0xc3) + 1; // inside the two bytes of "é"
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, cut));
        controller.enqueue(bytes.slice(cut, cut + 3));
        controller.enqueue(bytes.slice(cut + 3));
        controller.close();
      },
    });
    const events = [];
    for await (const event of readEvents(body)) events.push(event);
    expect(events).toEqual([{ event: "delta", data: '{"text":"café ✓"}' }]);
  });

  it("cancels the stream when the reader stops early, so the server stops generating", async () => {
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new TextEncoder().encode('event: delta\ndata: {"text":"x"}\n\n'));
      },
      cancel() {
        cancelled = true;
      },
    });
    for await (const event of readEvents(body)) {
      expect(event.event).toBe("delta");
      break;
    }
    expect(cancelled).toBe(true);
  });
});

describe("streamPlayground", () => {
  it("reports a stream cut before its end event as an error", async () => {
    const stream = 'event: start\ndata: {"models":[]}\n\nevent: delta\ndata: {"index":0,"text":"hal"}\n\n';
    const realFetch = globalThis.fetch;
    globalThis.fetch = async () => new Response(stream, { status: 200, headers: { "Content-Type": "text/event-stream" } });
    try {
      const seen: string[] = [];
      await expect(
        (async () => {
          for await (const event of streamPlayground({ prompt: "p", variables: {}, models: [] })) seen.push(event.event);
        })(),
      ).rejects.toThrow("ended before the server finished");
      expect(seen).toEqual(["start", "delta"]);
    } finally {
      globalThis.fetch = realFetch;
    }
  });
});

const RESULT: Schemas["CallResultOut"] = {
  index: 1,
  provider: "local",
  model: "gemma-3-270m",
  status: "ok",
  text: " negative",
  usage: { inputTokens: 61, outputTokens: 2, estimated: false },
  costUsd: 0,
  latencyMs: 412.4,
  ttftMs: 120.2,
  runId: "run_abc",
  finishReason: "stop",
  params: {},
  cached: false,
  truncated: false,
};

describe("outputsReducer", () => {
  it("appends deltas to their column, replaces the text with the result's and marks unfinished columns stopped", () => {
    let outputs = outputsReducer([], { type: "reset", count: 2 });
    outputs = outputsReducer(outputs, { event: "delta", data: { index: 1, text: " neg" } });
    outputs = outputsReducer(outputs, { event: "delta", data: { index: 1, text: "ative" } });
    expect(outputs[1]).toEqual({ text: " negative", result: null, state: "streaming" });
    expect(outputs[0].state).toBe("waiting");
    outputs = outputsReducer(outputs, { event: "result", data: RESULT });
    outputs = outputsReducer(outputs, { type: "finished" });
    expect(outputs[1]).toEqual({ text: " negative", result: RESULT, state: "done" });
    expect(outputs[0].state).toBe("stopped");
  });
});

describe("columns", () => {
  it("start from a version's model config and send temperature and max tokens over its other params", () => {
    const column = columnFrom({ provider: "local", model: "gemma-3-270m", params: { temperature: 0, max_tokens: 3, stop: ["\n"] } });
    expect(describeColumn(column)).toBe('temperature 0 · max tokens 3 · {"stop":["\\n"]}');
    expect(targetOf({ ...column, maxTokens: 16 })).toEqual({
      provider: "local",
      model: "gemma-3-270m",
      params: { stop: ["\n"], temperature: 0, max_tokens: 16 },
    });
    expect(targetOf({ ...column, extra: "[1]" })).toBe("Other parameters must be a JSON object");
    expect(targetOf({ ...column, model: "gemma" })).toMatch(/provider\/model/);
  });
});

describe("variablesOf", () => {
  it("lists declared variables, then names the template uses without declaring them", () => {
    const version = {
      variables: [{ name: "review", type: "string", required: true, description: "The review" }],
      template: "{{ review }} {{ tone }} {% for x in items %}{{ loop.index }}{% endfor %}",
      messages: null,
    } as unknown as Schemas["VersionOut"];
    expect(variablesOf(version).map((v) => [v.name, v.required])).toEqual([
      ["review", true],
      ["tone", true],
    ]);
  });
});

function me(permissions: string[], role: Me["role"] = "PromptEngineer"): Me {
  return { kind: "user", id: "usr_1", name: "a@example.com", projectId: "prj_1", orgId: "org_1", role, permissions };
}

function wrap(children: ReactNode, who: Me) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false, enabled: false } } });
  return render(
    <MantineProvider>
      <QueryClientProvider client={client}>
        <MemoryRouter>
          <MeProvider me={who}>{children}</MeProvider>
        </MemoryRouter>
      </QueryClientProvider>
    </MantineProvider>,
  );
}

describe("ResultColumn", () => {
  it("shows the streamed text while the answer is coming, then tokens, cost, latency and the run", () => {
    const who = me(["playground:run", "dataset:write", "run:read"]);
    const view = wrap(<ResultColumn index={1} model="local/gemma-3-270m" settings="temperature 0.7" output={{ text: " neg", result: null, state: "streaming" }} />, who);
    const output = screen.getByLabelText("Output of column 2");
    expect(output).toHaveTextContent("neg");
    expect(output).toHaveAttribute("aria-busy", "true");
    expect(screen.queryByText("Open run")).toBeNull();
    view.rerender(
      <MantineProvider>
        <QueryClientProvider client={new QueryClient()}>
          <MemoryRouter>
            <MeProvider me={who}>
              <ResultColumn index={1} model="local/gemma-3-270m" settings="temperature 0.7" output={{ text: " negative", result: RESULT, state: "done" }} />
            </MeProvider>
          </MemoryRouter>
        </QueryClientProvider>
      </MantineProvider>,
    );
    const column = screen.getByRole("region", { name: "Column 2" });
    expect(within(column).getByText("61 in / 2 out")).toBeInTheDocument();
    expect(within(column).getByText("412 ms")).toBeInTheDocument();
    expect(within(column).getByText("$0")).toBeInTheDocument();
    expect(within(column).getByRole("link", { name: "Open run" })).toHaveAttribute("href", "/runs/run_abc");
    expect(within(column).getByRole("button", { name: "Save as dataset case" })).toBeEnabled();
  });

  it("shows a failed call's problem in words, with its run but nothing to save", () => {
    const failed = { ...RESULT, status: "error" as const, text: null, error: { status: 429, code: "rate_limited", detail: "The provider is rate limiting", requestId: "req-9" } };
    wrap(<ResultColumn index={0} model="openai/gpt-4o" settings="" output={{ text: "", result: failed, state: "done" }} />, me(["playground:run", "run:read"]));
    expect(screen.getByRole("alert")).toHaveTextContent("The provider is rate limiting");
    expect(screen.getByText("Request id: req-9")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Open run" })).toHaveAttribute("href", "/runs/run_abc");
    expect(screen.queryByRole("button", { name: "Save as dataset case" })).toBeNull();
  });

  it("disables saving a case for a role without dataset:write", () => {
    wrap(<ResultColumn index={0} model="local/gemma-3-270m" settings="" output={{ text: "x", result: RESULT, state: "done" }} />, me(["playground:run", "run:read"]));
    expect(screen.getByRole("button", { name: "Save as dataset case" })).toBeDisabled();
  });
});

describe("PlaygroundPage", () => {
  it("tells a role without playground:run why it cannot run models", () => {
    wrap(<PlaygroundPage />, me(["prompt:read", "run:read"], "Viewer"));
    expect(screen.getByText(/Your role \(Viewer\) does not have the playground:run permission/)).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Run" })).toBeNull();
  });
});
