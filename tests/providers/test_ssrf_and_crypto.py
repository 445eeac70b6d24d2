"""SSRF guard for provider base URLs and the AES-GCM secret box."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from promptops.crypto import SecretBox, SecretUnavailable, load_master_secret
from promptops.providers.ssrf import UnsafeUrl, check_base_url, judge

PUBLIC = [ipaddress.ip_address("93.184.216.34")]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://localhost/v1",
        "http://2130706433/",  # decimal spelling of 127.0.0.1
        "http://0x7f.1/",  # hex + short form
        "http://127.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.5/",
        "http://192.168.1.10/",
        "http://172.16.3.4/",
        "http://100.64.1.1/",  # carrier-grade NAT
        "http://0.0.0.0/",
    ],
)
async def test_private_and_odd_addresses_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl) as info:
        await check_base_url(url, [])
    assert info.value.status == 422 and info.value.code == "unsafe_base_url"


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "http://user:pw@example.com/", "http:///nohost", "file:///etc/passwd"]
)
async def test_malformed_urls_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        await check_base_url(url, [])


async def test_unresolvable_host() -> None:
    with pytest.raises(UnsafeUrl) as info:
        await check_base_url("https://no-such-host.invalid/v1", [])
    assert info.value.code == "unresolvable_base_url"


def test_public_address_allowed_and_allow_list() -> None:
    judge("https://api.example.com/v1", PUBLIC, [])
    loopback = [ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(UnsafeUrl):
        judge("http://localhost:11434/v1", loopback, [])
    judge("http://localhost:11434/v1", loopback, ["localhost:11434"])
    judge("http://localhost:11434/v1", loopback, ["127.0.0.0/8"])
    with pytest.raises(UnsafeUrl):
        judge("http://localhost:11434/v1", loopback, ["localhost:8080"])
    mapped = [ipaddress.ip_address("::ffff:10.1.2.3")]
    judge("http://inference.lan/", mapped, ["10.0.0.0/8"])
    # one private address among public ones is enough to refuse (DNS with mixed answers)
    with pytest.raises(UnsafeUrl):
        judge("https://mixed.example.com/", [*PUBLIC, ipaddress.ip_address("169.254.169.254")], [])


LOOPBACK_OR_PRIVATE = "a private, loopback, link-local or reserved address"

# (url, what the refusal names): every spelling of a private address, resolved locally (literals or localhost)
REFUSED = [
    ("http://127.0.0.1/", "resolves to 127.0.0.1,"),
    ("http://localhost:11434/v1", "'localhost' resolves to"),  # a host name that resolves to loopback
    ("http://10.1.2.3/", "resolves to 10.1.2.3,"),
    ("http://169.254.169.254/latest/meta-data/", "resolves to 169.254.169.254,"),
    ("http://[::1]/", "resolves to ::1,"),
    ("http://2130706433/", "resolves to 127.0.0.1,"),  # decimal
    ("http://0x7f.1/", "resolves to 127.0.0.1,"),  # hex, short form
    ("http://017700000001/", "resolves to 127.0.0.1,"),  # octal
    ("http://0177.0.0.1/", "resolves to 127.0.0.1,"),  # octal dotted
    ("http://[::ffff:127.0.0.1]/", "(which carries 127.0.0.1)"),  # IPv4-mapped
    ("http://[::ffff:a9fe:a9fe]/", "(which carries 169.254.169.254)"),  # IPv4-mapped, hex
    ("http://[::ffff:0:7f00:1]/", "(which carries 127.0.0.1)"),  # IPv4-translated (SIIT)
    ("http://[::127.0.0.1]/", "(which carries 127.0.0.1)"),  # IPv4-compatible
    ("http://[::10.0.0.1]/", "(which carries 10.0.0.1)"),
    ("http://[64:ff9b::7f00:1]/", "(which carries 127.0.0.1)"),  # NAT64 well-known prefix
    ("http://[64:ff9b::a9fe:a9fe]/", "(which carries 169.254.169.254)"),
    ("http://[64:ff9b:1::7f00:1]/", "resolves to 64:ff9b:1::7f00:1,"),  # NAT64 local-use prefix
    ("http://[64:ff9b:1::808:808]/", "resolves to 64:ff9b:1::808:808,"),
    ("http://[2002:7f00:0001::]/", "(which carries 127.0.0.1)"),  # 6to4
    ("http://[2002:a9fe:a9fe::1]/", "(which carries 169.254.169.254)"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "127.0.0.1)"),  # Teredo, client 127.0.0.1
    ("http://[fe80::1]/", "resolves to fe80::1,"),
    ("http://[fc00::1]/", "resolves to fc00::1,"),
]


@pytest.mark.parametrize(("url", "named"), REFUSED)
async def test_every_spelling_of_a_private_address_is_refused(url: str, named: str) -> None:
    with pytest.raises(UnsafeUrl) as info:
        await check_base_url(url, [])
    assert info.value.status == 422 and info.value.code == "unsafe_base_url"
    assert named in info.value.detail and LOOPBACK_OR_PRIVATE in info.value.detail
    assert "PROMPTOPS_PROVIDER_ALLOWED_HOSTS" in info.value.detail


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:0/", "http://[::1]:0/", "https://example.com:65536/", "http://example.com:-1/"]
)
async def test_ports_outside_1_to_65535_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl) as info:
        await check_base_url(url, ["127.0.0.1", "::1"])
    assert info.value.detail == "Base URL has an invalid port: it must be a number from 1 to 65535"


async def test_allow_list_still_admits_loopback_and_public_embeddings_pass() -> None:
    await check_base_url("http://127.0.0.1:11434/v1", ["127.0.0.1"])
    await check_base_url("http://127.0.0.1:11434/v1", ["127.0.0.0/8"])
    await check_base_url("http://[::ffff:127.0.0.1]:8080/", ["127.0.0.0/8"])
    await check_base_url("http://localhost:11434/v1", ["localhost:11434"])
    # an IPv6 address carrying a public IPv4 address is judged by that address
    judge("http://[64:ff9b::5db8:d822]/", [ipaddress.ip_address("64:ff9b::5db8:d822")], [])
    judge("http://[2002:5db8:d822::1]/", [ipaddress.ip_address("2002:5db8:d822::1")], [])
    judge("http://[2606:4700::1111]/", [ipaddress.ip_address("2606:4700::1111")], [])


def test_secret_box_round_trip_binding_and_rotation() -> None:
    old = SecretBox("first-master-secret-000")
    token = old.encrypt("sk-canary-123", "row-1")
    assert "sk-canary" not in token and token.startswith("v1." + old.current_kid + ".")
    assert old.decrypt(token, "row-1") == "sk-canary-123"
    with pytest.raises(SecretUnavailable):
        old.decrypt(token, "row-2")  # bound to its row
    new = SecretBox("second-master-secret-00", previous=["first-master-secret-000"])
    assert new.needs_rotation(token) and new.decrypt(token, "row-1") == "sk-canary-123"
    rotated = new.encrypt(new.decrypt(token, "row-1"), "row-1")
    assert not new.needs_rotation(rotated)
    with pytest.raises(SecretUnavailable) as info:
        SecretBox("second-master-secret-00").decrypt(token, "row-1")
    assert info.value.code == "secret_key_unknown"
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(SecretUnavailable):
        old.decrypt(tampered, "row-1")


def test_master_secret_generated_once_with_private_mode(tmp_path: Path) -> None:
    first = load_master_secret(None, tmp_path)
    assert load_master_secret(None, tmp_path) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert load_master_secret("configured-secret-value", tmp_path) == "configured-secret-value"
