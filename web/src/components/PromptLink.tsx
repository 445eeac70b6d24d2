import { Anchor } from "@mantine/core";
import { useQueryClient } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { Link } from "react-router";
import { setCurrentProject } from "../api/client";
import { useMe } from "../auth";
import { promptUrl } from "../paths";

/** A link to a prompt's page; a prompt of another project (a search across projects) switches to that project
 * first, as the project menu does, so the page shows that prompt and not a namesake of the current project. */
export function PromptLink({ name, projectId, children }: { name: string; projectId: string; children?: ReactNode }) {
  const me = useMe();
  const client = useQueryClient();
  return (
    <Anchor
      component={Link}
      to={promptUrl(name)}
      onClick={() => {
        if (projectId === me.projectId) return;
        setCurrentProject(projectId);
        void client.invalidateQueries();
      }}
    >
      {children ?? name}
    </Anchor>
  );
}
