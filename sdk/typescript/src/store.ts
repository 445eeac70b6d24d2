import type { Resolved } from "./prompt.js";

/** A prompt as kept by a persisted store: the server's answer and when it was received. */
export interface StoredPrompt {
  resolved: Resolved;
  fetchedAt: number;
}

/**
 * Where the last known version of each prompt is kept across restarts, read only when the server cannot be
 * reached and the memory cache has nothing. `@promptops/sdk/node` has a file store; `localStorageStore()` works in
 * browsers. Errors of a store are counted (`stats.storeErrors`) and otherwise ignored.
 */
export interface PromptStore {
  get(key: string): Promise<StoredPrompt | undefined>;
  set(key: string, value: StoredPrompt): Promise<void>;
}

/** A store in the browser's `localStorage` (or any object with `getItem`/`setItem`). */
export function localStorageStore(
  storage: Pick<Storage, "getItem" | "setItem"> = globalThis.localStorage,
  prefix = "promptops:",
): PromptStore {
  return {
    async get(key) {
      const text = storage.getItem(prefix + key);
      return text ? (JSON.parse(text) as StoredPrompt) : undefined;
    },
    async set(key, value) {
      storage.setItem(prefix + key, JSON.stringify(value));
    },
  };
}
