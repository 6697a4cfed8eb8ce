"""Where a webhook may point (ledger/alert_targets.py): the address check, the operator's
allow-list, and the check repeated after resolving the name again (DNS rebinding)."""

from __future__ import annotations

import ipaddress
import re

import pytest

from ledger.alert_targets import (
    IPAddress,
    TargetRefused,
    checked_address,
    parse_allow,
    refusal,
    resolve,
    target_of,
)


def ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    ("addr", "why"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("169.254.0.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("febf::1", "a link-local address"),
        ("10.0.0.1", "a private address"),
        ("172.31.255.255", "a private address"),
        ("192.168.0.1", "a private address"),
        ("100.64.0.1", "a private address"),
        ("fc00::1", "a private address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("0.0.0.0", "the unspecified address"),
        ("::", "the unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
    ],
)
def test_non_public_addresses_are_refused_naming_why(addr: str, why: str) -> None:
    assert refusal(ip(addr)) == why


@pytest.mark.parametrize(
    "addr", ["192.0.2.1", "240.0.0.1", "198.18.0.1", "2001:db8::1", "255.255.255.255"]
)
def test_other_non_routable_addresses_are_refused(addr: str) -> None:
    # Documentation, reserved, benchmarking, broadcast: which words name them follows
    # the ipaddress module's tables; that they are refused is what matters.
    assert refusal(ip(addr)) is not None


@pytest.mark.parametrize(
    ("addr", "why"),
    [
        # NAT64 (RFC 6052): in an IPv6-only network the translator delivers to 127.0.0.1,
        # the VPC's private hosts, the metadata service.
        ("64:ff9b::7f00:1", "an IPv6 address reaching 127.0.0.1, a loopback address"),
        ("64:ff9b::a00:1", "an IPv6 address reaching 10.0.0.1, a private address"),
        ("64:ff9b::a9fe:a9fe", "an IPv6 address reaching 169.254.169.254, a cloud metadata"),
        # 6to4 (2002::/16), SIIT (::ffff:0:0:0/96), IPv4-compatible (::/96).
        ("2002:a9fe:a9fe::1", "an IPv6 address reaching 169.254.169.254, a cloud metadata"),
        ("2002:c0a8:1::", "an IPv6 address reaching 192.168.0.1, a private address"),
        ("::ffff:0:7f00:1", "an IPv6 address reaching 127.0.0.1, a loopback address"),
        ("::7f00:1", "an IPv6 address reaching 127.0.0.1, a loopback address"),
        # Local-use NAT64 (RFC 8215) and site-local: not global, whatever ipaddress says.
        ("64:ff9b:1::a00:1", "a private address"),
        ("fec0::1", "a private address"),
    ],
)
def test_ipv6_addresses_carrying_a_refused_ipv4_address_are_refused(addr: str, why: str) -> None:
    assert (refusal(ip(addr)) or "").startswith(why)


def test_ipv6_addresses_carrying_a_public_or_allowed_ipv4_address_may_receive() -> None:
    # DNS64 answers 64:ff9b::<public IPv4> for an IPv4-only receiver: that is fine.
    assert refusal(ip("64:ff9b::808:808")) is None
    assert refusal(ip("2002:808:808::1")) is None
    assert refusal(ip("64:ff9b::a14:304"), parse_allow(["10.20.0.0/16"])) is None


@pytest.mark.parametrize("addr", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "1.1.1.1"])
def test_public_addresses_may_receive(addr: str) -> None:
    assert refusal(ip(addr)) is None


def test_the_allow_list_opens_exactly_its_networks() -> None:
    allow = parse_allow(["127.0.0.1", "10.20.0.0/16", "fd12::/16"])
    assert refusal(ip("127.0.0.1"), allow) is None
    assert refusal(ip("::ffff:127.0.0.1"), allow) is None
    assert refusal(ip("127.0.0.2"), allow) == "a loopback address"
    assert refusal(ip("::1"), allow) == "a loopback address"
    assert refusal(ip("10.20.3.4"), allow) is None
    assert refusal(ip("10.21.0.1"), allow) == "a private address"
    assert refusal(ip("fd12::5"), allow) is None
    assert refusal(ip("169.254.169.254"), allow) == "a cloud metadata address"
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33' is not an address or CIDR")):
        parse_allow(["10.0.0.0/33"])
    with pytest.raises(ValueError, match="'intranet' is not"):
        parse_allow(["intranet"])


def test_a_name_is_checked_on_every_address_it_resolves_to() -> None:
    answers = {"hooks.example": [ip("93.184.216.34"), ip("10.0.0.7")]}

    def resolver(host: str, port: int) -> list[IPAddress]:
        return answers[host]

    with pytest.raises(TargetRefused, match=r"hooks.example resolves to 10.0.0.7, which is a priv"):
        checked_address("https://hooks.example/h", (), resolver)
    answers["hooks.example"] = [ip("93.184.216.34")]
    t, addr = checked_address("https://hooks.example:8443/h", (), resolver)
    assert (t.scheme, t.host, t.port, addr) == ("https", "hooks.example", 8443, ip("93.184.216.34"))


def test_a_name_re_pointed_after_registration_is_refused_at_delivery() -> None:
    """DNS rebinding: public when registered, loopback when delivered; each call
    resolves anew and checks what it got, and the address returned is the one checked."""
    seen = iter([[ip("93.184.216.34")], [ip("127.0.0.1")]])

    def rebinding(host: str, port: int) -> list[IPAddress]:
        return next(seen)

    url = "http://rebind.example/h"
    assert checked_address(url, (), rebinding)[1] == ip("93.184.216.34")
    with pytest.raises(
        TargetRefused, match=re.escape("rebind.example resolves to 127.0.0.1, which")
    ):
        checked_address(url, (), rebinding)


def test_resolution_of_literals_and_names() -> None:
    assert resolve("127.0.0.1", 80) == [ip("127.0.0.1")]
    assert resolve("::1", 80) == [ip("::1")]
    # Another spelling of an address is resolved to the address it means.
    assert resolve("2130706433", 80) == [ip("127.0.0.1")]
    with pytest.raises(TargetRefused, match="does not resolve"):
        resolve("no-such-host.invalid", 80)
    assert target_of("http://[::1]/x").host == "::1"
    assert target_of("https://a.example/").port == 443
    with pytest.raises(TargetRefused, match="port"):
        target_of("http://a.example:99999/")
