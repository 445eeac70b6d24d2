import { Text } from "@mantine/core";
import type { Schemas } from "../api/client";

type Segment = Schemas["SegmentOut"];

/** A search snippet: plain text with the matched words in <mark>. The server's text is never parsed as HTML. */
export function Snippet({ segments, label }: { segments: Segment[]; label?: string }) {
  if (segments.length === 0) return null;
  return (
    <Text size="sm" aria-label={label} style={{ overflowWrap: "anywhere" }} data-testid="snippet">
      {segments.map((segment, index) =>
        segment.match ? (
          <mark key={index} style={{ backgroundColor: "#fde68a", color: "#1a1b1e", borderRadius: 2, padding: "0 1px" }}>
            {segment.text}
          </mark>
        ) : (
          <span key={index}>{segment.text}</span>
        ),
      )}
    </Text>
  );
}
