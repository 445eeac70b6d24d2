// Move a label to a version the optimizer made (the winner of an optimization, a refined version), after a
// confirmation that shows what the move ships: the diff from the version the label points at now.
import { Button, Group, Loader, Modal, Stack, Text, TextInput, Textarea, Tooltip } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, unwrap } from "../../api/client";
import { isApprovalRequest } from "../../approvals";
import { ApprovalNotice } from "../../components/ApprovalNotice";
import { useCan, useMe } from "../../auth";
import { DiffView } from "../../components/DiffView";
import { ErrorNotice } from "../../components/ErrorNotice";

type Props = {
  promptName: string;
  versionId: string;
  /** What the version is called in the page ("the winner (v3)", "v4"). */
  what: string;
  /** Shown in the diff when the label does not exist yet: the version the target came from. */
  baseVersionId: string;
  buttonLabel: string;
  defaultReason: string;
  onMoved?: () => void;
};

/** The project's deployment labels (settings.deployableLabels; "production" when not set). */
function useDeployableLabels(): string[] {
  const me = useMe();
  const projects = useQuery({ queryKey: ["projects"], queryFn: () => unwrap(api.GET("/api/v1/projects")) });
  const settings = projects.data?.find((p) => p.id === me.projectId)?.settings as { deployableLabels?: string[] } | undefined;
  return settings?.deployableLabels ?? ["production"];
}

export function PromoteLabel({ promptName, versionId, what, baseVersionId, buttonLabel, defaultReason, onMoved }: Props) {
  const canMove = useCan("label:write");
  const canDeploy = useCan("label:deploy");
  const deployableLabels = useDeployableLabels();
  const [label, setLabel] = useState("staging");
  const [reason, setReason] = useState(defaultReason);
  const [open, setOpen] = useState(false);
  const client = useQueryClient();
  const labels = useQuery({
    queryKey: ["prompt", promptName, "labels"],
    queryFn: () => unwrap(api.GET("/api/v1/prompts/{name}/labels", { params: { path: { name: promptName } } })),
    enabled: open,
  });
  const current = labels.data?.find((l) => l.name === label) ?? null;
  // Moving a deployment label (the project's deployableLabels) needs label:deploy as well.
  const deployment = current ? current.deployable : deployableLabels.includes(label);
  const blocked = deployment && !canDeploy;
  const from = current?.versionId ?? baseVersionId;
  const diff = useQuery({
    queryKey: ["prompt", promptName, "diff", from, versionId],
    queryFn: () => unwrap(api.GET("/api/v1/prompts/{name}/diff", { params: { path: { name: promptName }, query: { from, to: versionId } } })),
    enabled: open && labels.isSuccess,
  });
  const move = useMutation({
    mutationFn: () =>
      unwrap(api.PUT("/api/v1/prompts/{name}/labels/{label}", { params: { path: { name: promptName, label } }, body: { versionId, reason } })),
    onSuccess: async () => {
      setOpen(false);
      await client.invalidateQueries({ queryKey: ["prompt", promptName] });
      onMoved?.();
    },
  });
  const valid = /^[a-z][a-z0-9_-]*$/.test(label);
  if (!canMove) {
    return (
      <Tooltip label="Your role cannot move labels (label:write)">
        <Button disabled>{buttonLabel}</Button>
      </Tooltip>
    );
  }
  return (
    <>
      <Group align="end">
        <TextInput label="Label to move" value={label} onChange={(e) => setLabel(e.currentTarget.value.trim())} w={180} error={label && !valid ? "lowercase letters, digits, - and _" : undefined} />
        <Button disabled={!valid} onClick={() => setOpen(true)}>
          {buttonLabel}
        </Button>
      </Group>
      {move.isSuccess && isApprovalRequest(move.data) && <ApprovalNotice request={move.data} />}
      {move.isSuccess && !isApprovalRequest(move.data) && (
        <Text role="status">
          {label} now points at {what}.
        </Text>
      )}
      <Modal opened={open} onClose={() => setOpen(false)} title={`Move ${label} to ${what}`} size="xl">
        <Stack>
          {labels.isLoading && <Loader size="sm" role="status" aria-label="Loading the labels" />}
          {labels.isSuccess && (
            <Text>
              {current
                ? current.versionId === versionId
                  ? `${label} already points at ${what}.`
                  : `${label} points at v${current.version} now. The change it ships:`
                : `${label} is new on ${promptName}. The change from the starting version:`}
            </Text>
          )}
          {diff.isLoading && <Loader size="sm" role="status" aria-label="Loading the diff" />}
          {diff.data && <DiffView diff={diff.data} />}
          {blocked && (
            <Text role="alert">
              Moving {label} is a deployment: your role needs the label:deploy permission. Choose another label, or ask someone who can deploy.
            </Text>
          )}
          <ErrorNotice error={labels.error ?? diff.error ?? move.error} />
          <Textarea label="Reason" value={reason} onChange={(e) => setReason(e.currentTarget.value)} />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setOpen(false)}>
              Cancel
            </Button>
            <Button onClick={() => move.mutate()} loading={move.isPending} disabled={!labels.isSuccess || blocked}>
              Confirm move
            </Button>
          </Group>
        </Stack>
      </Modal>
    </>
  );
}
