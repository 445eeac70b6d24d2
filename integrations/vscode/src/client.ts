// A small client for the PromptOps API with the errors a user can act on: server unreachable, key missing or
// refused (401), permission missing (403), and the problem's own detail otherwise.
import type { Ui } from "./facade.js";

export const KEY_SECRET = "promptops.apiKey";
const TIMEOUT_MS = 300_000; // generate/refine call models; the embedded one can take minutes on a laptop

export interface Problem {
  title?: string;
  detail?: string;
  code?: string;
  status?: number;
  [extra: string]: unknown;
}

/** A failure the extension shows as is: the message says what happened and what to do. */
export class PromptOpsError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly code: string,
  ) {
    super(message);
    this.name = "PromptOpsError";
  }
}

export class Api {
  constructor(
    readonly baseUrl: string,
    private readonly key: string,
    private readonly timeoutMs = TIMEOUT_MS,
    /** The `X-Project` header (a project id or name): picks the project for a user session token; an API key
     * always works in its own project and the server ignores the header. */
    readonly project?: string,
  ) {}

  /** The same connection in another project (undefined: the key's own / the session's default project). */
  inProject(project: string | undefined): Api {
    return project === this.project ? this : new Api(this.baseUrl, this.key, this.timeoutMs, project);
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("POST", path, body);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PUT", path, body);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(this.baseUrl + path, {
        method,
        headers: {
          Authorization: `Bearer ${this.key}`,
          "Content-Type": "application/json",
          Accept: "application/json",
          ...(this.project ? { "X-Project": this.project } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const why = error instanceof Error && error.name === "TimeoutError" ? "timed out" : "could not connect";
      throw new PromptOpsError(
        `Cannot reach the PromptOps server at ${this.baseUrl} (${why}). Check the "promptops.serverUrl" setting and ` +
          "that the server is running (promptops serve).",
        undefined,
        "network_error",
      );
    }
    const text = await response.text();
    if (response.ok) return (text ? JSON.parse(text) : null) as T;
    let problem: Problem = {};
    try {
      problem = JSON.parse(text) as Problem;
    } catch {
      problem = { detail: text.slice(0, 300) };
    }
    const detail = problem.detail ?? problem.title ?? response.statusText;
    const code = problem.code ?? `http_${response.status}`;
    if (response.status === 401) {
      throw new PromptOpsError(
        `The PromptOps server at ${this.baseUrl} did not accept the API key (401: ${detail}). Run "PromptOps: Set API key".`,
        401,
        code,
      );
    }
    if (response.status === 403) {
      throw new PromptOpsError(
        `Your API key lacks a permission for this (403: ${detail}). Ask a project admin for a role that has it.`,
        403,
        code,
      );
    }
    throw new PromptOpsError(`PromptOps: ${detail} (${response.status} ${code})`, response.status, code);
  }
}

/** The API with the stored key; asks for the key when none is stored (undefined: the user cancelled). */
export async function connect(ui: Ui): Promise<Api | undefined> {
  const url = ui.serverUrl().trim().replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]+/.test(url)) {
    throw new PromptOpsError(`The "promptops.serverUrl" setting (${JSON.stringify(url)}) is not an http(s) URL.`, undefined, "bad_url");
  }
  let key = await ui.secrets.get(KEY_SECRET);
  if (!key) {
    key = await askKey(ui);
    if (!key) return undefined;
  }
  return new Api(url, key);
}

/** "PromptOps: Set API key": kept in SecretStorage, never in settings.json. */
export async function askKey(ui: Ui): Promise<string | undefined> {
  const key = (
    await ui.showInputBox({ prompt: "PromptOps API key (kept in VS Code's secret storage)", placeHolder: "po_...", password: true })
  )?.trim();
  if (!key) return undefined;
  await ui.secrets.store(KEY_SECRET, key);
  ui.showInfo("PromptOps API key saved in VS Code's secret storage.");
  return key;
}

export async function clearKey(ui: Ui): Promise<void> {
  await ui.secrets.delete(KEY_SECRET);
  ui.showInfo("PromptOps API key removed.");
}
