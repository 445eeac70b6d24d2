// What the approval pages, the navigation badge and the label moves share (kept small: the navigation is on
// every page's first load).
import type { Schemas } from "./api/client";
import type { Me } from "./auth";

export type ApprovalRequest = Schemas["ApprovalRequestOut"];

export const APPROVAL_STATUSES = ["open", "applied", "rejected", "superseded", "cancelled", "overridden"] as const;

export function approvalUrl(id: string): string {
  return `/approvals/${encodeURIComponent(id)}`;
}

/** Whether an open request waits for this person's decision: their role counts for the label's rule, they did
 * not ask for the move nor write the version (four-eyes rule), and they have not decided yet. The server
 * decides; this only picks what the navigation badge counts. */
export function awaitsDecisionOf(request: ApprovalRequest, me: Pick<Me, "id" | "role" | "permissions">): boolean {
  return (
    request.status === "open" &&
    me.permissions.includes("approval:review") &&
    request.roles.includes(me.role) &&
    request.requestedBy !== me.id &&
    request.authorId !== me.id &&
    !request.decisions.some((d) => d.reviewerId === me.id)
  );
}

/** Whether a label route's answer is the approval request the move became (202) rather than a move (200). */
export function isApprovalRequest(value: unknown): value is ApprovalRequest {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Partial<ApprovalRequest>;
  return typeof v.id === "string" && v.id.startsWith("apr_") && typeof v.required === "number" && Array.isArray(v.decisions);
}

/** "v1 → v2" (or "new → v2" when the label had no version). */
export function moveText(request: Pick<ApprovalRequest, "baseVersion" | "version">): string {
  return `${request.baseVersion == null ? "new" : `v${request.baseVersion}`} → v${request.version}`;
}
