import { Table } from "@mantine/core";

/** A table's header row from its column titles ("" for a column without one, e.g. actions). */
export function TableHead({ columns }: { columns: string[] }) {
  return (
    <Table.Thead>
      <Table.Tr>
        {columns.map((title, index) => (
          <Table.Th key={index}>{title}</Table.Th>
        ))}
      </Table.Tr>
    </Table.Thead>
  );
}
