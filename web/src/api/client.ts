// The one way the UI talks to the server: a typed client generated from the server's OpenAPI document
// (`npm run gen:api` writes schema.d.ts from `promptops openapi`), so a backend change that breaks a page
// fails `tsc`. Cookies carry the login session; unsafe methods send the CSRF token the server set.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];
/** The query parameters of a GET route, as the server declares them. */
export type Query<P extends keyof paths> = paths[P] extends { get: { parameters: { query?: infer Q } } } ? NonNullable<Q> : never;

const PROJECT_KEY = "promptops.project";

export function readCookie(name: string): string | null {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

export function currentProject(): string | null {
  return window.localStorage.getItem(PROJECT_KEY);
}

export function setCurrentProject(projectId: string | null): void {
  if (projectId) window.localStorage.setItem(PROJECT_KEY, projectId);
  else window.localStorage.removeItem(PROJECT_KEY);
}

/** An answer from the API that was not a success, with what the server said and the request id to quote. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly requestId: string | null;
  readonly fieldErrors: { loc?: unknown[]; msg?: string }[];

  constructor(status: number, problem: Partial<Problem> | null, requestId: string | null) {
    const detail = problem?.detail ?? `The server answered ${status}`;
    super(detail);
    this.status = status;
    this.code = problem?.code ?? "http_error";
    this.detail = detail;
    this.requestId = problem?.requestId ?? requestId;
    this.fieldErrors = (problem?.errors as { loc?: unknown[]; msg?: string }[] | undefined) ?? [];
  }
}

/** What every request of a signed-in browser carries: the CSRF token (unsafe methods) and the chosen project. */
export function sessionHeaders(method: string): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!["GET", "HEAD", "OPTIONS"].includes(method.toUpperCase())) {
    const csrf = readCookie("promptops_csrf");
    if (csrf) headers["X-CSRF-Token"] = csrf;
  }
  const project = currentProject();
  if (project) headers["X-Project"] = project;
  return headers;
}

const session: Middleware = {
  onRequest({ request }) {
    for (const [name, value] of Object.entries(sessionHeaders(request.method))) request.headers.set(name, value);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
api.use(session);

/** The data of an openapi-fetch answer, or an ApiError carrying the problem document. */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  throw new ApiError(response.status, (error as Partial<Problem>) ?? null, response.headers.get("x-request-id"));
}
