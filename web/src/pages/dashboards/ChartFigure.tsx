// A titled chart with its numbers: the chart is drawn for the eye (hidden from screen readers) and the same
// values are a table under "Show the numbers", which screen readers and keyboards reach like any disclosure.
import { Paper, Stack, Table, Text, Title, VisuallyHidden } from "@mantine/core";
import { useId, type ReactNode } from "react";
import { TableHead } from "../../components/TableHead";

export interface Column<R> {
  title: string;
  cell: (row: R) => ReactNode;
}

export function NumbersTable<R>({ label, columns, rows }: { label: string; columns: Column<R>[]; rows: R[] }) {
  return (
    <Table aria-label={label} striped>
      <TableHead columns={columns.map((c) => c.title)} />
      <Table.Tbody>
        {rows.map((row, i) => (
          <Table.Tr key={i}>
            {columns.map((c) => (
              <Table.Td key={c.title}>{c.cell(row)}</Table.Td>
            ))}
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

export function ChartFigure<R>({
  title,
  caption,
  empty,
  chart,
  columns,
  rows,
}: {
  title: string;
  caption: string;
  empty?: string | null;
  chart: ReactNode;
  columns: Column<R>[];
  rows: R[];
}) {
  const id = useId();
  return (
    <Paper withBorder p="md" component="figure" m={0} aria-labelledby={id}>
      <Stack gap="xs">
        <Title order={2} size="h4" id={id}>
          {title}
        </Title>
        {empty ? (
          <Text>{empty}</Text>
        ) : (
          <>
            <div aria-hidden="true">{chart}</div>
            <VisuallyHidden>
              <figcaption>{caption} The numbers are in the table below.</figcaption>
            </VisuallyHidden>
            <details>
              <summary>Show the numbers</summary>
              <NumbersTable label={title} columns={columns} rows={rows} />
            </details>
          </>
        )}
      </Stack>
    </Paper>
  );
}
