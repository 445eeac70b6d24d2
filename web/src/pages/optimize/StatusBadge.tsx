import { Badge } from "@mantine/core";
import { CHANGE_COLOR, OK_COLOR } from "../../colors";

const STATUS_COLOR: Record<string, string> = {
  completed: OK_COLOR,
  failed: CHANGE_COLOR.removed,
  cancelled: "gray.7",
  running: "blue.8",
  queued: CHANGE_COLOR.changed,
};

/** An optimization's status (queued, running, completed, failed, cancelled) in a colour that reads at AA. */
export function StatusBadge({ status }: { status: string }) {
  return <Badge color={STATUS_COLOR[status] ?? "gray.7"}>{status}</Badge>;
}
