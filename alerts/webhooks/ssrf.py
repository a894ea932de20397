"""SSRF guard for registered webhook URLs.

Webhook URLs are typed in by people outside the operator's control (family members, grid workers, partner
systems), and the sender POSTs to them from inside our network. Without a guard a URL could make the
service probe internal services or read cloud instance metadata credentials. So a URL is refused when
*any* address its host resolves to is not a public unicast address, unless an operator allowlisted it.

The URL is parsed with ``httpx.URL``, the parser the sender itself uses, so the guard and the sender cannot
disagree about which host a tricky URL names. The check resolves DNS. At registration it refuses a bad URL;
when sending, the outbound client (``alerts/webhooks/pinned.py``) runs ``check_host`` on every request and
connects only to the addresses that passed it, so a DNS answer that changes after the check (rebinding)
never reaches the network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
Allowlist = tuple[frozenset[str], tuple[IPNetwork, ...]]  # hostnames, networks (parse_allowlist)

MAX_URL_LENGTH = 2000
_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
_SHARED = ipaddress.ip_network("100.64.0.0/10")
# Non-public ranges that Python 3.11's is_global still calls global.
_EXTRA_NON_PUBLIC = (ipaddress.ip_network("192.0.0.0/24"), ipaddress.ip_network("64:ff9b:1::/48"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURLError(ValueError):
    """A webhook URL the sender must not call; the message is one line, fit to show the registrant."""


class UnresolvedHostError(UnsafeURLError):
    """The host did not resolve (now): refused at registration, but worth a retry when sending, since DNS
    failures are often transient."""


def default_resolve(host: str, port: int) -> list[str]:
    """All addresses ``host`` resolves to for TCP, as the OS resolver sees them (blocking)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def check_url(
    url: str, *, allow: Sequence[str] = (), require_https: bool = True, resolve: Resolver | None = None
) -> list[str]:
    """Return the addresses ``url``'s host resolves to, or raise UnsafeURLError.

    ``allow`` holds hostnames (exact, case-insensitive; trusts all their addresses) and IP networks in CIDR
    notation (admit addresses inside them). A host is exempt from ``require_https`` when its name is
    allowlisted or all its addresses are inside allowlisted networks. Raises plain ValueError for an
    invalid allowlist entry, since that is operator configuration, not the registrant's URL.
    """
    parsed = parse_allowlist(allow)
    host, port, scheme = _parse(url)
    return check_host(host, port, scheme=scheme, allow=parsed, require_https=require_https, resolve=resolve)


def check_host(
    host: str,
    port: int,
    *,
    scheme: str,
    allow: Allowlist,
    require_https: bool = True,
    resolve: Resolver | None = None,
) -> list[str]:
    """``check_url`` for a host already parsed (lower case, no trailing dot) and an allowlist already parsed
    (``parse_allowlist``): the addresses it resolves to, all of them allowed, or UnsafeURLError."""
    names, networks = allow
    name_allowed = host in names
    if scheme == "http" and require_https and not name_allowed and not networks:
        raise UnsafeURLError(f"webhook URL must use https (host {host} is not allowlisted)")
    addresses = _resolve(host, port, resolve or default_resolve)
    if (
        scheme == "http"
        and require_https
        and not name_allowed
        and not all(_allowed(address, networks) for address in addresses)
    ):
        raise UnsafeURLError(f"webhook URL must use https (host {host} is not allowlisted)")
    if not name_allowed:
        for address in addresses:
            reason = None if _allowed(address, networks) else blocked_reason(address)
            if reason is not None:
                where = f"is {reason}" if _same_host(host, address) else f"resolves to {address}, {reason}"
                raise UnsafeURLError(f"webhook URL host {host} {where}; an operator can allowlist it")
    return [str(address) for address in addresses]


def parse_allowlist(allow: Sequence[str]) -> Allowlist:
    """Split allowlist entries into hostnames and networks; call at startup to fail fast on typos."""
    if isinstance(allow, str):
        raise TypeError("allow must be a sequence of entries, not a single string")
    names: set[str] = set()
    networks: list[IPNetwork] = []
    for entry in allow:
        value = entry.strip()
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
            continue
        except ValueError:
            if "/" in value or value.replace(".", "").isdigit() or ":" in value:
                raise ValueError(f"allowlist entry {entry!r} is not a valid IP network") from None
        if not value:
            raise ValueError("allowlist entry is empty")
        names.add(value.rstrip(".").lower())
    return frozenset(names), tuple(networks)


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` must not be called, or None for a public unicast address."""
    address = _without_scope(address)
    translated = _translated_ipv4(address)
    if translated is not None:
        # ::ffff:a.b.c.d and 64:ff9b::a.b.c.d *are* a.b.c.d on the wire; only it matters.
        inner = _own_reason(translated)
        return None if inner is None else f"an IPv6 address embedding {translated}, {inner}"
    for embedded in _embedded_ipv4(address):
        inner = _own_reason(embedded)
        if inner is not None:
            return f"an IPv6 address embedding {embedded}, {inner}"
    return _own_reason(address)


def _own_reason(address: IPAddress) -> str | None:
    # Most specific first, so the message tells the operator what the address actually is.
    checks: tuple[tuple[bool, str], ...] = (
        (address in _METADATA, "a cloud metadata address"),
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address in _SHARED, "a shared address space (100.64.0.0/10) address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (any(address in net for net in _EXTRA_NON_PUBLIC), "a special-purpose address"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for matched, reason in checks if matched), None)


def _translated_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped or NAT64 (64:ff9b::/96) IPv6 address stands for."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address routes to (mapped, NAT64, 6to4, Teredo client)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [_translated_ipv4(address), address.sixtofour, address.teredo[1] if address.teredo else None]
    return [embedded for embedded in found if embedded is not None]


def _allowed(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    candidates = [_without_scope(address), *_embedded_ipv4(_without_scope(address))]
    return any(candidate in network for candidate in candidates for network in networks)


def _parse(url: str) -> tuple[str, int, str]:
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURLError(f"webhook URL is {len(url)} characters long; the limit is {MAX_URL_LENGTH}")
    if any(ch.isspace() or ord(ch) < 0x20 or ch in "\x7f\\" for ch in url):
        raise UnsafeURLError("webhook URL must not contain whitespace, control characters or backslashes")
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii").rstrip(".").lower()
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise UnsafeURLError(f"webhook URL is malformed: {exc}") from None
    scheme = parsed.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURLError(f"webhook URL scheme {scheme or '(none)'!r} is not allowed; use https")
    if parsed.userinfo:
        raise UnsafeURLError("webhook URL must not contain credentials (user:password@)")
    if not host:
        raise UnsafeURLError("webhook URL has no host")
    port = parsed.port if parsed.port is not None else (443 if scheme == "https" else 80)
    if not 0 < port < 65536:
        raise UnsafeURLError(f"webhook URL port {port} is out of range")
    return host, port, scheme


def _resolve(host: str, port: int, resolve: Resolver) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        raw = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise UnresolvedHostError(f"cannot resolve webhook URL host {host}: {exc}") from None
    addresses: list[IPAddress] = []
    for text in dict.fromkeys(raw):
        try:
            addresses.append(ipaddress.ip_address(text))
        except ValueError:
            raise UnsafeURLError(f"cannot resolve webhook URL host {host}: bad address {text!r}") from None
    if not addresses:
        raise UnresolvedHostError(f"cannot resolve webhook URL host {host}: no addresses")
    return addresses


def _without_scope(address: IPAddress) -> IPAddress:
    # fe80::1%eth0 != fe80::1 to ipaddress, which would make it miss networks and the metadata set.
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return ipaddress.IPv6Address(int(address))
    return address


def _same_host(host: str, address: IPAddress) -> bool:
    try:
        return ipaddress.ip_address(host) == address
    except ValueError:
        return False
