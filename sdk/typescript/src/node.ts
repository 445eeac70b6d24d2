// Node-only additions: the persisted fallback as JSON files in a cache folder, and a `PromptOps` that uses it
// by default. `import { PromptOps } from "@promptops/sdk/node"`.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { PromptOps as BasePromptOps, type PromptOpsOptions } from "./client.js";
import type { PromptStore, StoredPrompt } from "./store.js";

export * from "./index.js";

/** `PROMPTOPS_CACHE_DIR`, else `$XDG_CACHE_HOME/promptops`, else `~/.cache/promptops`. */
export function defaultCacheDir(): string {
  if (process.env.PROMPTOPS_CACHE_DIR) return process.env.PROMPTOPS_CACHE_DIR;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "promptops");
}

/**
 * One JSON file per prompt selector in `dir` (named by a hash of server, project and selector, so two servers
 * never share an entry). Writes go to a temporary file that is renamed over the old one: a reader sees the old
 * or the new file, never half of one, even if the process dies mid-write.
 */
export class FileStore implements PromptStore {
  constructor(
    readonly dir: string = defaultCacheDir(),
    private readonly namespace = "",
  ) {}

  #path(key: string): string {
    const digest = createHash("sha256").update(`${this.namespace}\n${key}`).digest("hex").slice(0, 40);
    return join(this.dir, `prompt-${digest}.json`);
  }

  async get(key: string): Promise<StoredPrompt | undefined> {
    let text: string;
    try {
      text = await readFile(this.#path(key), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    const stored = JSON.parse(text) as StoredPrompt & { key?: string };
    return stored.key === key ? { resolved: stored.resolved, fetchedAt: stored.fetchedAt } : undefined;
  }

  async set(key: string, value: StoredPrompt): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const target = this.#path(key);
    const temporary = `${target}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      await writeFile(temporary, JSON.stringify({ key, ...value }), { mode: 0o600 });
      await rename(temporary, target);
    } catch (error) {
      await unlink(temporary).catch(() => {});
      throw error;
    }
  }
}

export interface NodePromptOpsOptions extends PromptOpsOptions {
  /** Folder of the persisted fallback (default `defaultCacheDir()`); ignored when `store` is given. */
  cacheDir?: string;
}

/** The client with a `FileStore` by default (`store: null` turns it off). */
export class PromptOps extends BasePromptOps {
  constructor(options: NodePromptOpsOptions = {}) {
    const { cacheDir, ...rest } = options;
    // Entries of different servers and projects never mix: the key's public prefix (`po_<8 hex>`) names its project.
    const url = (rest.url ?? process.env.PROMPTOPS_URL ?? "http://127.0.0.1:8000").replace(/\/+$/, "");
    const keyPrefix = (rest.apiKey ?? process.env.PROMPTOPS_API_KEY ?? "").slice(0, 11);
    const namespace = `${url}\n${rest.project ?? process.env.PROMPTOPS_PROJECT ?? ""}\n${keyPrefix}`;
    super({
      ...rest,
      store: rest.store === undefined ? new FileStore(cacheDir ?? defaultCacheDir(), namespace) : rest.store,
    });
  }
}
