"""SSRF guard for user-supplied provider base URLs.

A project admin can point a connection at any URL, and the server will then send requests there; without
this guard that is a way to reach the server's own network (cloud metadata at 169.254.169.254, databases on
loopback, private services). Every address the host resolves to must be globally routable. Resolution goes
through the system resolver, so odd spellings of an address (``2130706433``, ``0x7f.1``, ``127.1``,
``[::ffff:127.0.0.1]``) are judged by the address they really mean. Operators may allow specific private
hosts (a local Ollama, a vLLM on the LAN) with ``PROMPTOPS_PROVIDER_ALLOWED_HOSTS``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from promptops.errors import ValidationProblem

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValidationProblem):
    code = "unsafe_base_url"
    title = "Base URL not allowed"


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl(f"Base URL must use http or https, not {parts.scheme or 'nothing'!r}")
    if parts.username or parts.password:
        raise UnsafeUrl("Base URL must not carry credentials; put the API key in the connection's apiKey")
    if not parts.hostname:
        raise UnsafeUrl("Base URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl("Base URL has an invalid port")
    return parts.hostname.lower().rstrip("."), port


def _effective(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def _allowed(host: str, port: int, addresses: Sequence[IPAddress], allow: Sequence[str]) -> bool:
    for entry in allow:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry in (host, f"{host}:{port}"):
            return True
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if addresses and all(_effective(a) in network for a in addresses):
            return True
    return False


def judge(url: str, addresses: Sequence[IPAddress], allow: Sequence[str]) -> None:
    """Raise :class:`UnsafeUrl` unless every resolved address is public or the host is allow-listed."""
    host, port = _host_port(url)
    if _allowed(host, port, addresses, allow):
        return
    for address in addresses:
        real = _effective(address)
        if not real.is_global or real.is_multicast:
            raise UnsafeUrl(
                f"Base URL host {host!r} resolves to {real}, a private, loopback, link-local or reserved "
                "address; an operator can allow it with PROMPTOPS_PROVIDER_ALLOWED_HOSTS",
                host=host,
            )


def _parse(infos: list[tuple]) -> list[IPAddress]:
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def check_base_url(url: str, allow: Sequence[str]) -> None:
    """Resolve the URL's host (without blocking the event loop) and judge every address."""
    host, port = _host_port(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UnsafeUrl(f"Base URL host {host!r} does not resolve", code="unresolvable_base_url")
    judge(url, _parse(infos), allow)
