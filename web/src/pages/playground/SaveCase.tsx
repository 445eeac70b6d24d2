// "Save as dataset case": the run behind a column becomes a test case (its variables as input, its output as the
// expected answer if wanted) of an existing dataset (a new version) or of a new one (POST /datasets/from-runs).
import { Anchor, Autocomplete, Button, Checkbox, Group, Modal, Stack, Text, Tooltip } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router";
import { api, unwrap, type Schemas } from "../../api/client";
import { useCan } from "../../auth";
import { ErrorNotice } from "../../components/ErrorNotice";
import { datasetUrl } from "../DatasetsPage";

function savedSentence(saved: Schemas["FromRunsOut"]): string {
  const where = `v${saved.version.version} (${saved.version.caseCount} cases)`;
  if (saved.added > 0) return `Case added: ${where}.`;
  return saved.existing > 0 ? `The dataset already holds this case: ${where}.` : `Nothing changed: ${where}.`;
}

export function SaveCase({ runId, column }: { runId: string; column: number }) {
  const canWrite = useCan("dataset:write");
  const canReadRuns = useCan("run:read");
  const canSave = canWrite && canReadRuns;
  const [opened, setOpened] = useState(false);
  const [name, setName] = useState("");
  const [withExpected, setWithExpected] = useState(true);
  const client = useQueryClient();
  const datasets = useQuery({
    queryKey: ["datasets", "names"],
    queryFn: () => unwrap(api.GET("/api/v1/datasets", { params: { query: { limit: 200 } } })),
    enabled: opened,
  });
  const save = useMutation({
    mutationFn: () =>
      unwrap(api.POST("/api/v1/datasets/from-runs", { body: { name: name.trim(), runIds: [runId], expectedFrom: withExpected ? "output" : "none" } })),
    onSuccess: async () => {
      setOpened(false);
      await client.invalidateQueries({ queryKey: ["datasets"] });
    },
  });
  const title = `Save column ${column} as a dataset case`;
  return (
    <>
      <Tooltip label="Saving a case needs the dataset:write and run:read permissions" disabled={canSave}>
        <Button variant="default" size="xs" disabled={!canSave} onClick={() => setOpened(true)}>
          Save as dataset case
        </Button>
      </Tooltip>
      {save.data && (
        <Text size="sm" role="status">
          Saved to{" "}
          <Anchor component={Link} to={datasetUrl(save.data.dataset.name)}>
            {save.data.dataset.name}
          </Anchor>
          . {savedSentence(save.data)}
        </Text>
      )}
      <Modal opened={opened} onClose={() => setOpened(false)} title={title}>
        <form
          onSubmit={(event) => {
            event.preventDefault();
            save.mutate();
          }}
        >
          <Stack>
            <Autocomplete
              label="Dataset"
              description="Pick a dataset to extend, or type a new name (lower case, folders with /)"
              placeholder="e.g. sentiment/regressions"
              data={(datasets.data?.items ?? []).map((d) => d.name)}
              value={name}
              onChange={setName}
              required
              data-autofocus
            />
            <Checkbox
              label="Use this output as the expected answer"
              checked={withExpected}
              onChange={(event) => setWithExpected(event.currentTarget.checked)}
            />
            <ErrorNotice error={datasets.error ?? save.error} title={save.error ? "The case was not saved" : undefined} />
            <Group justify="flex-end">
              <Button variant="default" onClick={() => setOpened(false)}>
                Cancel
              </Button>
              <Button type="submit" loading={save.isPending} disabled={!name.trim()}>
                Save case
              </Button>
            </Group>
          </Stack>
        </form>
      </Modal>
    </>
  );
}
