import { Alert, Anchor, Text } from "@mantine/core";
import { Link } from "react-router";
import { approvalUrl, moveText, type ApprovalRequest } from "../approvals";

/** A label move that became an approval request (the label route answered 202): nothing moved yet; a link to
 * the request, where reviewers decide. */
export function ApprovalNotice({ request, onClose }: { request: ApprovalRequest; onClose?: () => void }) {
  return (
    <Alert
      variant="light"
      color="gray"
      styles={{ title: { color: "var(--mantine-color-text)" } }}
      title="Waiting for approval"
      role="status"
      data-testid="approval-notice"
      withCloseButton={Boolean(onClose)}
      closeButtonLabel="Dismiss the approval notice"
      onClose={onClose}
    >
      <Text size="sm" c="var(--mantine-color-text)">
        {request.label} on {request.promptName} needs {request.required} {request.required === 1 ? "approval" : "approvals"} (from{" "}
        {request.roles.join(", ")}) before it moves ({moveText(request)}). Nothing moved yet.{" "}
        <Anchor component={Link} to={approvalUrl(request.id)}>
          Open approval request {request.id}
        </Anchor>
      </Text>
    </Alert>
  );
}
