from __future__ import annotations

import ipaddress
import socket

import pytest

from alerts.webhooks import UnsafeURLError, blocked_reason, check_url, parse_allowlist

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:4700::6810:84e5"


def fake_dns(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    """A resolver for pure-logic tests: names not in the table do not exist."""
    calls: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append((host, port))
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


DNS = fake_dns(
    {
        "hooks.example.com": [PUBLIC_V4, PUBLIC_V6],
        "mixed.example.com": [PUBLIC_V4, "10.1.2.3"],
        "internal.example.com": ["192.168.1.20"],
        "localhost": ["127.0.0.1", "::1"],
        "rebind.example.com": ["169.254.169.254"],
    }
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.example.com/webhooks/shouwang", [PUBLIC_V4, PUBLIC_V6]),
        ("https://HOOKS.Example.com./x?y=1", [PUBLIC_V4, PUBLIC_V6]),
        (f"https://{PUBLIC_V4}:8443/x", [PUBLIC_V4]),
        (f"https://[{PUBLIC_V6}]/x", [PUBLIC_V6]),
    ],
)
def test_public_urls_pass_and_return_addresses(url: str, expected: list[str]) -> None:
    assert check_url(url, resolve=DNS) == expected


def test_resolver_gets_host_and_default_port() -> None:
    resolve = fake_dns({"hooks.example.com": [PUBLIC_V4]})
    check_url("https://hooks.example.com/x", resolve=resolve)
    check_url("http://hooks.example.com:8080/x", resolve=resolve, require_https=False)
    assert resolve.calls == [("hooks.example.com", 443), ("hooks.example.com", 8080)]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://127.0.0.1/x", "127.0.0.1 is a loopback address"),
        ("https://[::1]/x", "::1 is a loopback address"),
        ("https://localhost/x", "resolves to 127.0.0.1, a loopback address"),
        ("https://10.0.0.5/x", "10.0.0.5 is a private address; an operator can allowlist it"),
        ("https://172.16.3.4/x", "private"),
        ("https://192.168.0.1/x", "private"),
        ("https://[fd12:3456::1]/x", "private"),
        ("https://internal.example.com/x", "resolves to 192.168.1.20, a private address"),
        ("https://mixed.example.com/x", "resolves to 10.1.2.3"),  # ANY bad address refuses
        ("https://169.254.10.1/x", "link-local"),
        ("https://[fe80::1]/x", "link-local"),
        ("https://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("https://[fd00:ec2::254]/x", "cloud metadata"),
        ("https://rebind.example.com/x", "resolves to 169.254.169.254, a cloud metadata address"),
        ("https://100.64.0.1/x", "shared address space"),
        ("https://100.127.255.254/x", "shared address space"),
        ("https://224.0.0.1/x", "multicast"),
        ("https://[ff02::1]/x", "multicast"),
        ("https://0.0.0.0/x", "unspecified"),
        ("https://[::]/x", "unspecified"),
        ("https://240.0.0.1/x", "reserved"),
        ("https://192.0.0.8/x", "special-purpose"),
        ("https://[::ffff:127.0.0.1]/x", "embedding 127.0.0.1, a loopback address"),
        ("https://[::ffff:10.0.0.5]/x", "embedding 10.0.0.5, a private address"),
        ("https://[::ffff:169.254.169.254]/x", "embedding 169.254.169.254, a cloud metadata address"),
        ("https://[64:ff9b::a9fe:a9fe]/x", "embedding 169.254.169.254, a cloud metadata address"),
        ("https://[2002:a00:5::1]/x", "embedding 10.0.0.5, a private address"),
        ("https://[2001:db8::1]/x", "a private address|not a public address"),  # documentation range
        ("https://255.255.255.255/x", "reserved"),
    ],
)
def test_non_public_addresses_are_refused(url: str, message: str) -> None:
    with pytest.raises(UnsafeURLError, match=message):
        check_url(url, resolve=DNS)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/x", "scheme 'ftp' is not allowed"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("javascript:alert(1)", "not allowed"),
        ("//hooks.example.com/x", "scheme '\\(none\\)'"),
        ("http://user:pw@hooks.example.com/", "credentials"),
        ("https://user@hooks.example.com/", "credentials"),
        ("https://evil.example\\@127.0.0.1/", "backslashes"),
        ("https:///x", "no host"),
        ("https://", "no host"),
        ("https://hooks.example.com/" + "a" * 2000, "the limit is 2000"),
        ("https://hooks.example.com/a b", "whitespace"),
        ("https://hooks.example.com/\r\nHost: x", "control characters"),
        ("https://hooks.example.com:99999/", "port 99999 is out of range"),
        ("https://hooks.example.com:0/", "port 0 is out of range"),
        ("https://[::1/", "malformed"),
        ("http://hooks.example.com/x", "must use https"),
        ("https://nonexistent.example.com/x", "cannot resolve webhook URL host nonexistent.example.com"),
    ],
)
def test_malformed_or_forbidden_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(UnsafeURLError, match=message):
        check_url(url, resolve=DNS)


def test_http_is_allowed_when_https_is_not_required() -> None:
    assert check_url("http://hooks.example.com/x", require_https=False, resolve=DNS) == [PUBLIC_V4, PUBLIC_V6]


def test_allowlisted_network_admits_address_and_waives_https() -> None:
    assert check_url("http://127.0.0.1:8080/x", allow=["127.0.0.0/8"], require_https=True) == ["127.0.0.1"]
    assert check_url("https://[::1]/x", allow=["::1/128"]) == ["::1"]
    assert check_url("https://[::ffff:10.0.0.5]/x", allow=["10.0.0.0/8"]) == ["::ffff:a00:5"]
    assert check_url("http://10.0.0.5/x", allow=["10.0.0.5"]) == ["10.0.0.5"]


def test_allowlisted_network_must_cover_every_address() -> None:
    with pytest.raises(UnsafeURLError, match="resolves to ::1, a loopback"):
        check_url("https://localhost/x", allow=["127.0.0.0/8"], resolve=DNS)
    with pytest.raises(UnsafeURLError, match="must use https"):
        check_url("http://mixed.example.com/x", allow=["10.0.0.0/8"], resolve=DNS)
    with pytest.raises(UnsafeURLError, match="private"):
        check_url("https://10.0.0.5/x", allow=["127.0.0.0/8"])


def test_allowlisted_hostname_trusts_all_its_addresses_case_insensitively() -> None:
    assert check_url("http://Internal.Example.com/x", allow=["internal.example.COM"], resolve=DNS) == ["192.168.1.20"]
    # ... but only that exact name.
    with pytest.raises(UnsafeURLError, match="private"):
        check_url("https://internal.example.com/x", allow=["example.com"], resolve=DNS)


def test_default_resolver_resolves_localhost() -> None:
    with pytest.raises(UnsafeURLError, match="loopback"):
        check_url("https://localhost/x")
    assert "127.0.0.1" in check_url("http://localhost:9/x", allow=["localhost"])


def test_numeric_host_spellings_are_caught_via_resolution() -> None:
    # 127.1 and 2130706433 are 127.0.0.1 to the OS resolver, whatever a regex might think.
    for url in ("https://127.1/x", "https://2130706433/x"):
        with pytest.raises(UnsafeURLError, match="loopback"):
            check_url(url)


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "300.1.2.3", "10.0.0.0/8/1", "fe80::zz/64", " "])
def test_invalid_allowlist_entries_are_configuration_errors(entry: str) -> None:
    with pytest.raises(ValueError, match="allowlist entry") as info:
        parse_allowlist([entry])
    assert not isinstance(info.value, UnsafeURLError)


def test_allowlist_must_be_a_sequence_not_a_string() -> None:
    with pytest.raises(TypeError):
        check_url("https://127.0.0.1/", allow="127.0.0.0/8")


def test_blocked_reason_of_public_addresses_is_none() -> None:
    # Mapped and NAT64 forms of a public IPv4 address are that address, so they pass too.
    for text in (PUBLIC_V4, PUBLIC_V6, "8.8.8.8", "1.1.1.1", "::ffff:8.8.8.8", "64:ff9b::808:808"):
        assert blocked_reason(ipaddress.ip_address(text)) is None
