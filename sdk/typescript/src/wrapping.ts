// What the client wrappers (`./openai`, `./anthropic`) share: the proxy that replaces one method of a provider
// client, the derived promise that records an answer without reading its body twice, the stream whose iterator
// reports each event and its end, and the fields of an error run.
import type { Prompt } from "./prompt.js";
import type { RunRecord } from "./tracing.js";

/** The extra fields a wrapped call takes; they are removed before the request is sent. */
export interface PromptOpsCallFields {
  /** The registry prompt this call uses: the call is recorded as a run of its version. */
  promptopsPrompt?: Prompt;
  /** Groups the run with others of one request or session. */
  promptopsTraceId?: string;
}

export type AnyFn = (...args: unknown[]) => unknown;

/** The part of a provider's `APIPromise` the wrappers use. */
export interface Thenable {
  then(ok: (value: unknown) => unknown, fail: (error: unknown) => unknown): unknown;
  _thenUnwrap?: (transform: (value: unknown) => unknown) => unknown;
}

export function now(): number {
  return globalThis.performance?.now() ?? Date.now();
}

/** An error run's fields: the error's name (with the HTTP status of a provider's API error) and message, within the
 * server's limits. */
export function errorFields(error: unknown): Pick<RunRecord, "status" | "errorClass" | "errorMessage"> {
  const err = error instanceof Error ? error : new Error(String(error));
  const status = (error as { status?: unknown } | null | undefined)?.status;
  const name = err.name || "Error";
  return {
    status: "error",
    errorClass: (typeof status === "number" ? `${name} ${status}` : name).slice(0, 60),
    errorMessage: err.message.slice(0, 2000),
  };
}

/**
 * Returns ONE promise derived from the provider's `call` that passes its value through `onValue`, and reports a
 * failure to `onError` from a side branch (the caller still gets the rejection). The providers' `APIPromise` reads
 * the body once per promise and keeps `withResponse()` on promises made with `_thenUnwrap`, so that is used when
 * there.
 */
export function derive(call: Thenable, onValue: (value: unknown) => unknown, onError: (error: unknown) => void): Thenable {
  const derived = (
    typeof call._thenUnwrap === "function" ? call._thenUnwrap(onValue) : call.then(onValue, (e) => Promise.reject(e))
  ) as Thenable;
  derived.then(() => undefined, onError);
  return derived;
}

/** What `observeStream` reports: each event as it passes, then the end once (no error: the stream ended, or the
 * caller stopped reading early). */
export interface StreamObserver<T> {
  event(value: T): void;
  end(error?: unknown): void;
}

/**
 * Wraps the async iterator of a provider's stream object in place: events pass through unchanged as they come, and
 * `observer` sees each of them and the end. Both the `openai` and `@anthropic-ai/sdk` `Stream` classes read through
 * their `iterator` property (for `for await`, `tee()` and `toReadableStream()` alike); other objects through
 * `Symbol.asyncIterator`.
 */
export function observeStream<S extends object, T>(stream: S, observer: StreamObserver<T>): S {
  const wrapIterator = (inner: AsyncIterator<T>): AsyncIterator<T> => ({
    async next() {
      let result: IteratorResult<T>;
      try {
        result = await inner.next();
      } catch (error) {
        observer.end(error);
        throw error;
      }
      if (result.done) observer.end();
      else observer.event(result.value);
      return result;
    },
    async return(value?: unknown) {
      // The caller stopped early (`break`): what arrived so far is the run's output.
      observer.end();
      return (await inner.return?.(value)) ?? { done: true, value: undefined };
    },
  });
  const target = stream as unknown as { iterator?: () => AsyncIterator<T> };
  if (typeof target.iterator === "function") {
    const original = target.iterator.bind(stream);
    target.iterator = () => wrapIterator(original());
  } else {
    const iterable = stream as unknown as AsyncIterable<T>;
    const original = iterable[Symbol.asyncIterator].bind(stream);
    (stream as unknown as Record<symbol, unknown>)[Symbol.asyncIterator] = () => wrapIterator(original());
  }
  return stream;
}

/**
 * A proxy of `target` with some properties replaced. Other methods are bound to the target itself, so that their
 * private fields (`#…`) keep working when called through the proxy.
 */
export function overriding<T extends object>(target: T, overrides: Record<PropertyKey, unknown>): T {
  return new Proxy(target, {
    get(obj, prop) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop as keyof typeof overrides];
      const found = Reflect.get(obj, prop, obj) as unknown;
      return typeof found === "function" ? (found as AnyFn).bind(obj) : found;
    },
  });
}
