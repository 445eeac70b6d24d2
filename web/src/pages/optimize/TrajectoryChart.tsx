// The search's progress: model calls spent (x) against the best training score found so far (y), with the same
// numbers as a table for screen readers and keyboard users.
import { LineChart } from "@mantine/charts";
import { Box, Table, Text, Title } from "@mantine/core";
import { TableHead } from "../../components/TableHead";
import { score, type TrajectoryPoint } from "./model";

export function TrajectoryChart({ points }: { points: TrajectoryPoint[] }) {
  const last = points.at(-1);
  const caption = last
    ? `Best training score ${score(last.best)} after ${last.calls} model calls (${points.length} scored points).`
    : "No candidate has a score yet.";
  return (
    <Box component="figure" m={0} aria-labelledby="trajectory-title">
      <Title order={2} size="h4" id="trajectory-title">
        Trajectory: best score by model calls
      </Title>
      {points.length > 0 && (
        <LineChart
          h={240}
          mt="sm"
          data={points}
          dataKey="calls"
          series={[{ name: "best", label: "Best training score", color: "blue.8" }]}
          xAxisLabel="Model calls"
          yAxisLabel="Best score"
          yAxisProps={{ domain: [0, 1] }}
          xAxisProps={{ type: "number", domain: [0, "dataMax"] }}
          curveType="stepAfter"
          withDots
          aria-label="Line chart of the best training score against the model calls spent"
          role="img"
        />
      )}
      <Text component="figcaption" size="sm" c="dimmed">
        {caption}
      </Text>
      {points.length > 0 && (
        <details>
          <summary>Trajectory as a table</summary>
          <Table aria-label="Trajectory" mt="xs">
            <TableHead columns={["Model calls", "Candidate", "Its score", "Best so far"]} />
            <Table.Tbody>
              {points.map((p) => (
                <Table.Tr key={p.candidateId}>
                  <Table.Td>{p.calls}</Table.Td>
                  <Table.Td>{p.strategy}</Table.Td>
                  <Table.Td>{score(p.score)}</Table.Td>
                  <Table.Td>{score(p.best)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </details>
      )}
    </Box>
  );
}
