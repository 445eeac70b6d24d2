// The rating screen's keyboard shortcuts, as a pure function of the key event so the rules are testable:
// digits set a score, N/Enter submits, S skips; nothing fires while the analyst types in a text field, and
// Enter is left to a focused button or link (so it never both presses the button and submits).

export type Shortcut = { kind: "score"; value: number } | { kind: "submit" } | { kind: "skip" };

export const SHORTCUT_LEGEND: [string, string][] = [
  ["1 – 5", "set the score (or the focused criterion's score)"],
  ["N or Enter", "submit and load the next item"],
  ["S", "skip this item"],
  ["Tab", "move to the notes box (shortcuts pause while you type)"],
  ["Esc", "leave the notes box; Ctrl+Enter there submits"],
];

type KeyLike = Pick<KeyboardEvent, "key" | "ctrlKey" | "metaKey" | "altKey"> & { target: EventTarget | null };

const TEXT_INPUT_TYPES = new Set(["text", "search", "email", "url", "tel", "password", "number", ""]);

/** Whether keys typed at `target` are text (a textarea, a text input, an editable element). */
export function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  if (target instanceof HTMLInputElement) return TEXT_INPUT_TYPES.has(target.type);
  return target.getAttribute("role") === "combobox";
}

function pressesSomething(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && target.closest("button, a[href], [role='button'], [role='tab']") !== null;
}

/** The shortcut a key press means on the rating screen, or null when it should do its ordinary thing. */
export function shortcutOf(event: KeyLike): Shortcut | null {
  if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return null;
  const key = event.key;
  if (/^[1-5]$/.test(key)) return { kind: "score", value: Number(key) };
  if (key === "n" || key === "N") return { kind: "submit" };
  if (key === "Enter" && !pressesSomething(event.target)) return { kind: "submit" };
  if (key === "s" || key === "S") return { kind: "skip" };
  return null;
}
