"""SSRF guard for user-supplied provider base URLs.

A project admin can point a connection at any URL, and the server will then send requests there; without
this guard that is a way to reach the server's own network (cloud metadata at 169.254.169.254, databases on
loopback, private services). Every address the host resolves to must be globally routable. Resolution goes
through the system resolver, so odd spellings of an address (``2130706433``, ``0x7f.1``, ``127.1``,
``[::ffff:127.0.0.1]``) are judged by the address they really mean, and an IPv6 address that carries IPv4
addresses (IPv4-mapped or -compatible, NAT64, 6to4, Teredo) is judged by those. Operators may allow specific
private hosts (a local Ollama, a vLLM on the LAN) with ``PROMPTOPS_PROVIDER_ALLOWED_HOSTS``.
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
        port = parts.port
    except ValueError:
        port = 0
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    elif not 1 <= port <= 65535:
        raise UnsafeUrl("Base URL has an invalid port: it must be a number from 1 to 65535")
    return parts.hostname.lower().rstrip("."), port


# IPv6 ranges whose addresses carry an IPv4 address in their last 32 bits (RFC 4291 IPv4-compatible and
# IPv4-mapped, RFC 2765 IPv4-translated, RFC 6052 NAT64 well-known prefix): a request there reaches that IPv4
# address, so it is judged as that address.
_LAST_32_BITS = tuple(
    ipaddress.IPv6Network(net) for net in ("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96")
)
# RFC 8215 local-use NAT64 prefix: translates to IPv4 inside the operator's own network, never global.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
_LAST_32_BITS_EXCEPT = (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1"))  # themselves, not IPv4


def _embedded(address: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo server and client)."""
    if isinstance(address, ipaddress.IPv4Address) or address in _LAST_32_BITS_EXCEPT:
        return ()
    if any(address in net for net in _LAST_32_BITS):
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo
    return ()


def _effective(address: IPAddress) -> IPAddress:
    """The address a connection really reaches: for an IPv6 address that carries IPv4 ones, the last of those."""
    embedded = _embedded(address)
    return embedded[-1] if embedded else address


def _unsafe(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address in _LOCAL_NAT64:
        return True
    judged: tuple[IPAddress, ...] = _embedded(address) or (address,)
    return any(not a.is_global or a.is_multicast for a in judged)


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
        if _unsafe(address):
            embedded = _embedded(address)
            shown = f"{address} (which carries {', '.join(map(str, embedded))})" if embedded else str(address)
            raise UnsafeUrl(
                f"Base URL host {host!r} resolves to {shown}, a private, loopback, link-local or reserved "
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
