"""A thin httpx wrapper: base URL and bearer token from the config, problem+json errors as :class:`CliError`."""

from __future__ import annotations

import json as json_module
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from promptops import __version__

DEFAULT_TIMEOUT = 30.0


class CliError(Exception):
    """A failure to show the user as ``Error: <title>: <detail> [code]`` (exit status 1)."""

    def __init__(
        self,
        title: str,
        detail: str | None = None,
        code: str | None = None,
        *,
        status: int | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(title)
        self.title = title
        self.detail = detail
        self.code = code
        self.status = status
        self.problem = problem or {}  # the server's whole problem document (extension members included)

    def __str__(self) -> str:
        text = self.title
        if self.detail and self.detail != self.title:
            # One line per error: multi-line details (YAML parser messages) would read as separate errors.
            text += ": " + " ".join(self.detail.split())
        if self.code:
            text += f" [{self.code}]"
        return text


def path_segment(value: str) -> str:
    """Escape a prompt name or reference for a URL path; '/' and '@' keep their meaning in the routes."""
    return quote(value, safe="/@")


def problem_error(response: httpx.Response) -> CliError:
    """The CliError for a non-2xx response, from its RFC 9457 body when it has one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("title" in body or "detail" in body):
        return CliError(
            str(body.get("title") or f"HTTP {response.status_code}"),
            str(body["detail"]) if body.get("detail") is not None else None,
            str(body["code"]) if body.get("code") else None,
            status=response.status_code,
            problem=body,
        )
    text = response.text.strip()[:300] or response.reason_phrase
    return CliError(f"HTTP {response.status_code}", text, status=response.status_code)


class ApiClient:
    """Calls the PromptOps REST API as one principal (API key or login session)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        project: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": f"promptops-cli/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if project:
            # Only login sessions use it: an API key is bound to one project and the server ignores it.
            headers["X-Project"] = project
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request; returns the decoded JSON body (``None`` for 204) or raises CliError.

        ``timeout`` (seconds) replaces the client's own for this request (a model call may wait its turn)."""
        response = self.send(method, path, params=params, json=json, timeout=timeout)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise CliError("The server sent a response that is not JSON", response.text[:300], "bad_response")

    def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send a JSON body or raw bytes (e.g. a dataset file) and return the raw 2xx response.

        ``None`` params are left out. Errors (no connection, timeout, a 4xx/5xx problem) raise :class:`CliError`.
        """
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(
                method,
                path,
                params=clean or None,
                json=json,
                content=content,
                headers=headers,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx.ConnectError as exc:
            raise CliError(
                f"Cannot connect to the PromptOps server at {self.url}",
                f"{_reason(exc)}; is the server running ('promptops serve') and is the URL right?",
                "connection_failed",
            )
        except httpx.TimeoutException:
            raise CliError(f"The PromptOps server at {self.url} did not answer in time", None, "timeout")
        except httpx.HTTPError as exc:
            raise CliError(f"Request to {self.url} failed", str(exc) or type(exc).__name__, "http_error")
        if response.status_code >= 400:
            raise problem_error(response)
        return response

    def stream_events(self, path: str, body: Any) -> Iterator[tuple[str, Any]]:
        """POST ``body`` and yield the Server-Sent Events of the answer as ``(event, decoded data)``."""
        try:
            with self._http.stream("POST", path, json=body, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise problem_error(response)
                event = "message"
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        yield event, json_module.loads(line[5:].strip())
                    elif not line:
                        event = "message"
        except httpx.ConnectError as exc:
            raise CliError(
                f"Cannot connect to the PromptOps server at {self.url}",
                f"{_reason(exc)}; is the server running ('promptops serve') and is the URL right?",
                "connection_failed",
            )

    def download(self, path: str, target: BinaryIO, **params: Any) -> int:
        """GET ``path`` and write the body to ``target`` as it arrives (large exports); the bytes written."""
        clean = {k: v for k, v in params.items() if v is not None}
        written = 0
        try:
            with self._http.stream("GET", path, params=clean or None, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise problem_error(response)
                for chunk in response.iter_bytes():
                    target.write(chunk)
                    written += len(chunk)
        except httpx.ConnectError as exc:
            raise CliError(
                f"Cannot connect to the PromptOps server at {self.url}",
                f"{_reason(exc)}; is the server running ('promptops serve') and is the URL right?",
                "connection_failed",
            )
        return written

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` with query parameters (``None`` values are left out)."""
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, *, timeout: float | None = None) -> Any:
        """POST a JSON body (``timeout``: seconds for this request instead of the client's own)."""
        return self.request("POST", path, json=body if body is not None else {}, timeout=timeout)

    def put(self, path: str, body: Any, *, params: dict[str, Any] | None = None) -> Any:
        """PUT a JSON body."""
        return self.request("PUT", path, json=body, params=params)

    def patch(self, path: str, body: Any) -> Any:
        """PATCH a JSON body."""
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        """DELETE ``path``."""
        return self.request("DELETE", path)

    def paginate(self, path: str, params: dict[str, Any] | None = None) -> list[Any]:
        """Every item of a cursor-paginated listing, following ``nextCursor`` to the end."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            page = self.get(path, **(params or {}), cursor=cursor)
            items.extend(page.get("items") or [])
            cursor = page.get("nextCursor")
            if not cursor:
                return items


def _reason(exc: httpx.ConnectError) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "unknown host"
    return str(exc) or "connection failed"
