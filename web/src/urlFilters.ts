import { useSearchParams } from "react-router";

const TIMES = new Set(["from", "to"]);

/** List filters kept in the address (so a filtered list is a link): the current values, and a setter that
 * writes one (times from a datetime-local input become ISO instants) and calls `onChange` (reset paging);
 * `setFilters` writes several at once. */
export function useUrlFilters<K extends string>(keys: readonly K[], onChange: () => void) {
  const [params, setParams] = useSearchParams();
  const filters = Object.fromEntries(keys.flatMap((k) => (params.get(k) ? [[k, params.get(k)!]] : []))) as Partial<Record<K, string>>;
  /** Write several filters at once (separate calls in one event would each start from the same address). */
  function setFilters(values: Partial<Record<K, string | null>>) {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(values) as [K, string | null | undefined][]) {
      if (value) next.set(key, TIMES.has(key) ? new Date(value).toISOString() : value);
      else next.delete(key);
    }
    setParams(next, { replace: true });
    onChange();
  }
  function setFilter(key: K, value: string | null) {
    setFilters({ [key]: value } as Partial<Record<K, string | null>>);
  }
  return { filters, setFilter, setFilters };
}
