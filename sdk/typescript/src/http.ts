import { PromptOpsError, type Problem } from "./errors.js";

export interface HttpOptions {
  url: string;
  apiKey: string | undefined;
  project: string | undefined;
  timeoutMs: number;
  fetch: typeof fetch;
}

/** A JSON call to the API with the client's credentials; a non-2xx answer or a network failure throws. */
export async function requestJson<T>(
  http: HttpOptions,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs: number = http.timeoutMs,
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (http.apiKey) headers.Authorization = `Bearer ${http.apiKey}`;
  if (http.project) headers["X-Project"] = http.project;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await http.fetch(`${http.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const timedOut = error instanceof Error && error.name === "TimeoutError";
    throw new PromptOpsError(
      timedOut
        ? `PromptOps did not answer ${method} ${path} within ${timeoutMs} ms`
        : `Cannot reach PromptOps at ${http.url}: ${error instanceof Error ? error.message : String(error)}`,
      { code: timedOut ? "timeout" : "network_error", cause: error },
    );
  }
  const text = await response.text();
  if (!response.ok) {
    let problem: Problem | undefined;
    try {
      problem = JSON.parse(text) as Problem;
    } catch {
      problem = undefined;
    }
    const detail = problem?.detail ?? problem?.title ?? (text.slice(0, 200) || response.statusText);
    throw new PromptOpsError(`${method} ${path}: ${response.status} ${detail}`, {
      status: response.status,
      code: typeof problem?.code === "string" ? problem.code : `http_${response.status}`,
      problem,
    });
  }
  return (text ? JSON.parse(text) : null) as T;
}

/** `/api/v1/prompts/support/triage`: each segment of a prompt name encoded, its slashes kept. */
export function promptPath(name: string, suffix = ""): string {
  return `/api/v1/prompts/${name.split("/").map(encodeURIComponent).join("/")}${suffix}`;
}
