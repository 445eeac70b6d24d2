// The test network: the API client is made on import and keeps the fetch and Request it found then, so
// setup.ts installs these before any test file's imports run. A file answers requests by setting
// `network.handler` (and reads what was sent in `network.seen`); a request no handler answers goes to the real
// network (and fails in a unit test). Requests resolve relative URLs against the page's origin, as a browser does.
export const network: { handler: ((request: Request) => Promise<Response>) | null; seen: Request[] } = {
  handler: null,
  seen: [],
};

export function installNetwork(): void {
  const NodeRequest = globalThis.Request;
  class PageRequest extends NodeRequest {
    constructor(input: RequestInfo | URL, init?: RequestInit) {
      super(typeof input === "string" ? new URL(input, "http://localhost") : input, init);
    }
  }
  globalThis.Request = PageRequest;
  const nodeFetch = globalThis.fetch;
  globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    if (!network.handler) return nodeFetch(input, init);
    const request = new PageRequest(input, init);
    network.seen.push(request);
    return network.handler(request);
  };
}
