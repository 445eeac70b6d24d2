// A table row whose full prompt text opens below it: the "Show"/"Hide" button for the row's last cell, and
// the row with the text (rendered only while open).
import { Button, Code, Table } from "@mantine/core";
import { useState } from "react";

/** Which rows are open (by key). */
export function useOpenRows() {
  const [open, setOpen] = useState<ReadonlySet<string>>(new Set());
  return {
    isOpen: (key: string) => open.has(key),
    toggle: (key: string) => setOpen((old) => (old.has(key) ? new Set([...old].filter((k) => k !== key)) : new Set([...old, key]))),
  };
}

export function ShowTextButton({ open, what, onClick }: { open: boolean; what: string; onClick: () => void }) {
  return (
    <Button size="compact-sm" variant="default" aria-expanded={open} aria-label={`${open ? "Hide" : "Show"} the text of ${what}`} onClick={onClick}>
      {open ? "Hide" : "Show"}
    </Button>
  );
}

export function TextRow({ open, what, text, columns }: { open: boolean; what: string; text: string; columns: number }) {
  if (!open) return null;
  return (
    <Table.Tr>
      <Table.Td colSpan={columns}>
        <Code block aria-label={`Text of ${what}`}>
          {text}
        </Code>
      </Table.Td>
    </Table.Tr>
  );
}
