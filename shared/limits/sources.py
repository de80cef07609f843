"""Who is asking: the source every per-address limit counts.

An address is parsed, never compared as text: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
`[2001:db8::1]:54321` and `::ffff:1.2.3.4` are read with `ipaddress`. An IPv4 address is
one source; an IPv6 address counts as its /64 (the prefix a single subscriber or host
usually gets, a setting), so rotating through a subnet buys no fresh budget. Anything
that does not parse shares one source, `UNPARSABLE`, so it meets the limits together.
"""

from __future__ import annotations

import ipaddress

UNPARSABLE = "unparsable"
DEFAULT_IPV6_PREFIX = 64


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("["):  # "[v6]" or "[v6]:port"
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        text = host
    elif text.count(":") == 1:  # "v4:port"
        host, _, port = text.partition(":")
        if not port.isdigit():
            return None
        text = host
    text = text.partition("%")[0]  # an IPv6 zone ("fe80::1%eth0") names a local interface
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def source_of(text: str | None, ipv6_prefix: int = DEFAULT_IPV6_PREFIX) -> str:
    """The canonical source of a client address: "203.0.113.7", "2001:db8:1:2::/64", or
    UNPARSABLE."""
    address = _address(text or "")
    if address is None:
        return UNPARSABLE
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))


def forwarded_source(forwarded_for: str | None, trusted_proxy_count: int, ipv6_prefix: int) -> str:
    """The source of a request: the entry `trusted_proxy_count` hops from the right of
    X-Forwarded-For (each trusted proxy appends the address it was called from, the
    Functions front end last); what a client writes further left is ignored."""
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    if not hops:
        return UNPARSABLE
    return source_of(hops[max(0, len(hops) - trusted_proxy_count)], ipv6_prefix)
