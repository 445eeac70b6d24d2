import { useSearchParams } from "react-router";

const TIMES = new Set(["from", "to"]);

/** List filters kept in the address (so a filtered list is a link): the current values, and a setter that
 * writes one (times from a datetime-local input become ISO instants) and calls `onChange` (reset paging). */
export function useUrlFilters<K extends string>(keys: readonly K[], onChange: () => void) {
  const [params, setParams] = useSearchParams();
  const filters = Object.fromEntries(keys.flatMap((k) => (params.get(k) ? [[k, params.get(k)!]] : []))) as Partial<Record<K, string>>;
  function setFilter(key: K, value: string | null) {
    const next = new URLSearchParams(params);
    if (value) next.set(key, TIMES.has(key) ? new Date(value).toISOString() : value);
    else next.delete(key);
    setParams(next, { replace: true });
    onChange();
  }
  return { filters, setFilter };
}
