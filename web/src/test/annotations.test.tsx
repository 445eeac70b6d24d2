import { MantineProvider } from "@mantine/core";
import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { distributionText, formatMean } from "../components/FeedbackSummary";
import { parseIds } from "../pages/AnnotationsPage";
import { ShortcutLegend, inputText, progressText } from "../pages/annotations/RatingScreen";
import { isTyping, shortcutOf } from "../pages/annotations/shortcuts";

function element(html: string): HTMLElement {
  const holder = document.createElement("div");
  holder.innerHTML = html;
  document.body.append(holder);
  return holder.firstElementChild as HTMLElement;
}

function press(key: string, target: EventTarget | null, modifiers: Partial<Record<"ctrlKey" | "metaKey" | "altKey", boolean>> = {}) {
  return shortcutOf({ key, target, ctrlKey: false, metaKey: false, altKey: false, ...modifiers });
}

describe("rating shortcuts", () => {
  it("maps 1-5 to scores, N and Enter to submit, S to skip", () => {
    const body = document.body;
    expect([1, 2, 3, 4, 5].map((n) => press(String(n), body))).toEqual([1, 2, 3, 4, 5].map((value) => ({ kind: "score", value })));
    expect(press("n", body)).toEqual({ kind: "submit" });
    expect(press("N", body)).toEqual({ kind: "submit" });
    expect(press("Enter", body)).toEqual({ kind: "submit" });
    expect(press("s", body)).toEqual({ kind: "skip" });
    expect(press("6", body)).toBeNull();
    expect(press("0", body)).toBeNull();
    expect(press("x", body)).toBeNull();
  });

  it("keeps the score keys working on a focused radio button", () => {
    const radio = element('<input type="radio" name="score" value="3">');
    expect(isTyping(radio)).toBe(false);
    expect(press("4", radio)).toEqual({ kind: "score", value: 4 });
    expect(press("Enter", radio)).toEqual({ kind: "submit" });
  });

  it("does nothing while the analyst types in the notes or another text field", () => {
    const notes = element("<textarea></textarea>");
    const text = element('<input type="text">');
    for (const target of [notes, text]) {
      expect(isTyping(target)).toBe(true);
      for (const key of ["1", "5", "n", "s", "Enter"]) expect(press(key, target)).toBeNull();
    }
  });

  it("leaves Enter to a focused button or link and ignores keys with modifiers", () => {
    const button = element("<button><span>Skip</span></button>");
    expect(press("Enter", button)).toBeNull();
    expect(press("Enter", button.firstElementChild)).toBeNull();
    expect(press("n", button)).toEqual({ kind: "submit" });
    expect(press("s", document.body, { ctrlKey: true })).toBeNull();
    expect(press("3", document.body, { metaKey: true })).toBeNull();
    expect(press("n", document.body, { altKey: true })).toBeNull();
  });

  it("shows a legend of every shortcut", () => {
    render(
      <MantineProvider>
        <ShortcutLegend />
      </MantineProvider>,
    );
    const legend = screen.getByRole("list", { name: "Keyboard shortcuts" });
    expect(within(legend).getAllByRole("listitem")).toHaveLength(5);
    for (const keys of ["1 – 5", "N or Enter", "S", "Tab", "Esc"]) expect(within(legend).getByText(keys)).toBeInTheDocument();
  });
});

describe("queue helpers", () => {
  it("reads run ids separated by commas, spaces and new lines, once each", () => {
    expect(parseIds(" run_a, run_b\nrun_c  run_a,,")).toEqual(["run_a", "run_b", "run_c"]);
    expect(parseIds("  ")).toEqual([]);
  });

  it("shows a run's input as the model saw it", () => {
    expect(inputText({ prompt: "Review: ok\nSentiment:" })).toBe("Review: ok\nSentiment:");
    expect(inputText({ messages: [{ role: "system", content: "Be brief" }, { role: "user", content: "Hi" }] })).toBe("system: Be brief\n\nuser: Hi");
    expect(inputText({ variables: { a: 1 } })).toBe('{\n  "variables": {\n    "a": 1\n  }\n}');
    expect(inputText(null)).toBe("(no input recorded)");
  });

  it("says how many were rated and how many are left", () => {
    expect(progressText(3, { count: 12, more: false })).toBe("3 rated, 12 left");
    expect(progressText(0, { count: 1000, more: true })).toBe("0 rated, 1000+ left");
    expect(progressText(2, undefined)).toBe("2 rated");
  });
});

describe("feedback summary text", () => {
  it("writes the distribution and the mean in words", () => {
    expect(distributionText({ "1": 0, "2": 1, "3": 0, "4": 2, "5": 1 })).toBe("1: 0, 2: 1, 3: 0, 4: 2, 5: 1");
    expect(distributionText({})).toBe("1: 0, 2: 0, 3: 0, 4: 0, 5: 0");
    expect(formatMean(3.666667)).toBe("3.67");
    expect(formatMean(null)).toBe("—");
  });
});
