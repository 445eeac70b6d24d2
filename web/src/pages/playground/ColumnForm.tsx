// The settings of one model column: which model (connections and the catalog), temperature, max tokens and any
// other parameters as JSON.
import { ActionIcon, Card, Group, NumberInput, Select, Stack, Text, TextInput } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../../api/client";
import { useCan } from "../../auth";
import { targetOf, type ColumnConfig } from "./model";

const CATALOG_TYPE: Record<string, string> = { azure_openai: "openai" };

/** "provider/model" choices: with the connections (admins may list them) each connection's allowed models, or
 * the catalog's models of its type; without them the catalog. A value outside the list is kept as a choice. */
export function useModelOptions(extra: string[]): { value: string; label: string }[] {
  const canListConnections = useCan("provider:manage");
  const catalog = useQuery({ queryKey: ["models"], queryFn: () => unwrap(api.GET("/api/v1/models")) });
  const connections = useQuery({
    queryKey: ["providers"],
    queryFn: () => unwrap(api.GET("/api/v1/providers")),
    enabled: canListConnections,
  });
  const models = catalog.data ?? [];
  const values = connections.data
    ? connections.data.flatMap((c) => {
        const type = CATALOG_TYPE[c.type] ?? c.type;
        const names = c.allowedModels.length ? c.allowedModels : models.filter((m) => m.provider === type).map((m) => m.model);
        return names.map((m) => `${c.name}/${m}`);
      })
    : models.map((m) => `${m.provider}/${m.model}`);
  const prices = new Map(models.map((m) => [`${m.provider}/${m.model}`, m]));
  return [...new Set([...values, ...extra])].map((value) => {
    const price = prices.get(value);
    const priced = price && price.inputPer1M + price.outputPer1M > 0 ? ` ($${price.inputPer1M} / $${price.outputPer1M} per 1M)` : "";
    return { value, label: `${value}${priced}` };
  });
}

export function ColumnForm({
  index,
  column,
  options,
  onChange,
  onRemove,
}: {
  index: number;
  column: ColumnConfig;
  options: { value: string; label: string }[];
  onChange: (column: ColumnConfig) => void;
  onRemove: (() => void) | null;
}) {
  const n = index + 1;
  const target = targetOf(column);
  const numberOrEmpty = (value: string | number) => (value === "" ? "" : Number(value));
  return (
    <Card withBorder padding="sm">
      <Stack gap="xs">
        <Group justify="space-between">
          <Text fw={600} size="sm">
            Column {n}
          </Text>
          {onRemove && (
            <ActionIcon variant="default" aria-label={`Remove column ${n}`} onClick={onRemove}>
              ×
            </ActionIcon>
          )}
        </Group>
        <Select
          label="Model"
          aria-label={`Model ${n}`}
          searchable
          allowDeselect={false}
          data={options}
          value={column.model}
          onChange={(model) => model && onChange({ ...column, model })}
        />
        <Group grow align="start" wrap="nowrap">
          <NumberInput
            label="Temperature"
            aria-label={`Temperature ${n}`}
            min={0}
            max={2}
            step={0.1}
            decimalScale={2}
            placeholder="default"
            value={column.temperature}
            onChange={(value) => onChange({ ...column, temperature: numberOrEmpty(value) })}
          />
          <NumberInput
            label="Max tokens"
            aria-label={`Max tokens ${n}`}
            min={1}
            max={100000}
            allowDecimal={false}
            placeholder="default"
            value={column.maxTokens}
            onChange={(value) => onChange({ ...column, maxTokens: numberOrEmpty(value) })}
          />
        </Group>
        <TextInput
          label="Other parameters (JSON)"
          aria-label={`Other parameters ${n}`}
          placeholder={'e.g. {"stop": ["\\n"]}'}
          value={column.extra}
          error={typeof target === "string" && column.extra.trim() ? target : undefined}
          onChange={(event) => onChange({ ...column, extra: event.currentTarget.value })}
        />
      </Stack>
    </Card>
  );
}
