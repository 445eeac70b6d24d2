// Cursor paging shared by every list page: the stack of cursors walked so far, and the two buttons.
import { Button, Group } from "@mantine/core";
import { useState } from "react";

export function useCursorPages() {
  const [cursors, setCursors] = useState<string[]>([]);
  return {
    cursor: cursors.at(-1),
    depth: cursors.length,
    next: (cursor: string | null | undefined) => cursor && setCursors([...cursors, cursor]),
    previous: () => setCursors(cursors.slice(0, -1)),
    reset: () => setCursors([]),
  };
}

export function Pager({
  pages,
  nextCursor,
  labels = ["Previous page", "Next page"],
}: {
  pages: ReturnType<typeof useCursorPages>;
  nextCursor: string | null | undefined;
  labels?: [string, string];
}) {
  return (
    <Group>
      <Button variant="default" disabled={pages.depth === 0} onClick={pages.previous}>
        {labels[0]}
      </Button>
      <Button variant="default" disabled={!nextCursor} onClick={() => pages.next(nextCursor)}>
        {labels[1]}
      </Button>
    </Group>
  );
}
