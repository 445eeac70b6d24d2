import { MantineProvider } from "@mantine/core";
import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ApiError } from "../api/client";
import { sides } from "../components/DiffView";
import { ErrorNotice } from "../components/ErrorNotice";
import { promptUrl } from "../paths";

describe("sides", () => {
  it("puts removed lines left, added lines right, and aligns the context", () => {
    const unified = "--- a@1\n+++ a@2\n@@ -1,3 +1,3 @@\n keep\n-old\n+new\n+more\n tail";
    expect(sides(unified)).toEqual({ left: ["keep", "old", "", "tail"], right: ["keep", "new", "more", "tail"] });
  });
});

describe("promptUrl", () => {
  it("keeps folders as path segments and escapes each", () => {
    expect(promptUrl("support/triage v2")).toBe("/prompts/support/triage%20v2");
    expect(promptUrl("a/b", "labels")).toBe("/prompts/a/b?tab=labels");
  });
});

describe("ErrorNotice", () => {
  it("shows the problem detail, field errors and the request id", () => {
    const error = new ApiError(
      422,
      { detail: "Request validation failed", code: "validation_error", requestId: "req-42", errors: [{ loc: ["body", "name"], msg: "Field required" }] },
      null,
    );
    render(
      <MantineProvider>
        <ErrorNotice error={error} />
      </MantineProvider>,
    );
    expect(screen.getByRole("alert")).toHaveTextContent("Error 422");
    expect(screen.getByText("Request validation failed")).toBeInTheDocument();
    expect(screen.getByText("name: Field required")).toBeInTheDocument();
    expect(screen.getByText("Request id: req-42")).toBeInTheDocument();
  });

  it("renders nothing without an error", () => {
    render(
      <MantineProvider>
        <ErrorNotice error={null} />
      </MantineProvider>,
    );
    expect(screen.queryByRole("alert")).toBeNull();
  });
});

describe("usedNames", () => {
  it("lists the names a template uses, once each, without loop helpers", async () => {
    const { usedNames } = await import("../templateNames");
    expect(usedNames(["Hi {{ name }} {{name|upper}} {{- loop.index }}", "{{ ticket.title }} {% if x %}"])).toEqual(["name", "ticket"]);
  });
});
