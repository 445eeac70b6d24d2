/** An RFC 9457 problem document as the PromptOps API sends it (`application/problem+json`). */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  [extra: string]: unknown;
}

/**
 * A failed call to the PromptOps API. `status` is the HTTP status, or `undefined` when the server could not be
 * reached (connection refused, DNS, timeout); `code` is the problem's stable code (`prompt_not_found`,
 * `missing_variables`, ...) or `network_error` / `timeout`.
 */
export class PromptOpsError extends Error {
  readonly status: number | undefined;
  readonly code: string;
  readonly problem: Problem | undefined;

  constructor(message: string, options: { status?: number; code: string; problem?: Problem; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PromptOpsError";
    this.status = options.status;
    this.code = options.code;
    this.problem = options.problem;
  }

  /** True when retrying later may succeed: the server was unreachable, timed out, is overloaded or failed. */
  get retryable(): boolean {
    return this.status === undefined || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}
