"""Where a webhook may point (issue 17, docs/alerts.md "Where a webhook may point").

A webhook makes the ledger send HTTP requests to a URL a supervisor chose, so the URL
could aim those requests at the ledger's own network (server-side request forgery): the
loopback interface, a link-local cloud metadata service (169.254.169.254), private
ranges. A target is therefore refused unless every address its host resolves to is a
public (globally routable) one, or lies in a network the operator allowed
(``serve --alert-webhook-allow CIDR``). The check runs at registration and again before
each delivery, after resolving the name anew (a name may be re-pointed after it was
checked: DNS rebinding), and the delivery connects to the address just checked, never
to the name again.

:func:`refusal` is pure; :func:`resolve` is the one place that asks the system resolver.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from urllib.parse import urlsplit

from ledger.errors import LedgerError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Addresses of cloud instance metadata services (AWS, GCP, Azure, Alibaba Cloud use
#: 169.254.169.254 or 100.100.100.200; AWS also fd00:ec2::254), named as such.
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254")
)
#: Seconds a name's resolution may take before the target counts as unresolvable.
RESOLVE_TIMEOUT = 5.0
#: Addresses of one name looked at, at most.
MAX_ADDRESSES = 16

#: Resolves (host, port) to addresses; raises :class:`TargetRefused` when it cannot.
Resolver = Callable[[str, int], list[IPAddress]]


class TargetRefused(LedgerError, ValueError):
    """A webhook target refused; the message names the host, the address and why."""


@dataclass(frozen=True)
class Target:
    """A webhook URL's parts that the delivery needs: its scheme, host and port."""

    scheme: str
    host: str
    port: int


def parse_allow(items: Sequence[str]) -> tuple[IPNetwork, ...]:
    """The operator's allow-list: CIDR networks or single addresses; ValueError names a
    bad item."""
    out: list[IPNetwork] = []
    for item in items:
        try:
            out.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"--alert-webhook-allow: {item!r} is not an address or CIDR") from None
    return tuple(out)


def target_of(url: str) -> Target:
    """The scheme, host and port of an http(s) URL (checked by ``check_url`` first)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise TargetRefused(f"the port of {url[:200]!r} is not a number from 0 to 65535") from None
    return Target(scheme, host, port)


#: IPv6 prefixes whose addresses carry an IPv4 address in their last 32 bits, which a
#: translator or tunnel on the way delivers to: NAT64's well-known prefix (RFC 6052; in an
#: IPv6-only network with DNS64 this is how IPv4 hosts are reached) and the deprecated
#: IPv4-compatible addresses (RFC 4291 2.5.5.1), and SIIT's IPv4-translated addresses
#: (RFC 2765). 6to4 (2002::/16) carries it in bits 16-48.
_TRANSLATED = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::ffff:0:0:0/96"))
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
#: Not globally reachable, though the ipaddress module of Python 3.11 calls them global:
#: NAT64's local-use prefix (RFC 8215) and the deprecated site-local space (RFC 3879).
_LOCAL_V6 = (ipaddress.ip_network("64:ff9b:1::/48"), ipaddress.ip_network("fec0::/10"))


def embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for on its way (NAT64, 6to4,
    IPv4-compatible), or None: the webhook reaches that address, so it is checked too."""
    if any(addr in n for n in _TRANSLATED) or (addr in _V4_COMPATIBLE and int(addr) > 1):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return addr.sixtofour


def refusal(addr: IPAddress, allow: Sequence[IPNetwork] = ()) -> str | None:
    """Why ``addr`` may not receive webhooks (None: it may): a reason in words, or None
    when it is public or inside a network of ``allow``. An IPv6 address that carries an
    IPv4 address to a translator or tunnel (:func:`embedded_ipv4`) is refused when that
    IPv4 address is."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(addr.version == n.version and addr in n for n in allow):
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        inner = embedded_ipv4(addr)
        why = refusal(inner, allow) if inner is not None else None
        if why is not None:
            return f"an IPv6 address reaching {inner}, {why}"
        if any(addr in n for n in _LOCAL_V6):
            return "a private address"
    if addr in METADATA:
        return "a cloud metadata address"
    if addr.is_loopback:
        return "a loopback address"
    if addr.is_link_local:
        return "a link-local address"
    if addr.is_unspecified:
        return "the unspecified address"
    if addr.is_multicast:
        return "a multicast address"
    if addr.is_private or (
        isinstance(addr, ipaddress.IPv4Address) and addr in ipaddress.ip_network("100.64.0.0/10")
    ):
        return "a private address"
    if not addr.is_global:
        return "a reserved (not publicly routable) address"
    return None


_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-resolve")


def resolve(host: str, port: int, timeout: float = RESOLVE_TIMEOUT) -> list[IPAddress]:
    """The addresses ``host`` resolves to now (an address literal is itself), at most
    :data:`MAX_ADDRESSES`, waiting at most ``timeout`` seconds for the system resolver."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    fut = _pool.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = fut.result(timeout)
    except FutureTimeout:
        raise TargetRefused(f"host {host} did not resolve within {timeout:g} s") from None
    except (OSError, UnicodeError) as e:
        raise TargetRefused(f"host {host} does not resolve ({e})") from None
    out: list[IPAddress] = []
    for info in infos:
        a = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if a not in out:
            out.append(a)
    if not out:
        raise TargetRefused(f"host {host} resolves to no address")
    return out[:MAX_ADDRESSES]


def checked_address(
    url: str, allow: Sequence[IPNetwork] = (), resolver: Resolver = resolve
) -> tuple[Target, IPAddress]:
    """Resolve the URL's host and check every address it has; the target and the address
    to connect to. Raises :class:`TargetRefused` naming the host, the address and the
    reason when any address is refused (a name that points at a public and a private
    address at once is refused too: either may be the one connected to)."""
    t = target_of(url)
    addrs = resolver(t.host, t.port)
    for a in addrs:
        why = refusal(a, allow)
        if why is not None:
            who = str(a) if str(a) == t.host else f"{t.host} resolves to {a}, which"
            raise TargetRefused(
                f"{who} is {why}; webhooks go to public addresses only, unless the "
                "operator allows the network (serve --alert-webhook-allow)"
            )
    return t, addrs[0]
