"""Client addresses are parsed, never compared as text: each form a front end or proxy may
write names the same source, an IPv6 client counts per /64, junk shares one bucket."""

import pytest

from shared.limits.sources import UNPARSABLE, forwarded_source, source_of


@pytest.mark.parametrize(
    ("written", "source"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7:54321", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("[::ffff:203.0.113.7]:443", "203.0.113.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("[2001:db8:1:2::1]", "2001:db8:1:2::/64"),
        ("[2001:db8:1:2::1]:54321", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:0:0:0:1", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::1", "::/64"),
        ("", UNPARSABLE),
        ("unknown", UNPARSABLE),
        ("203.0.113.999", UNPARSABLE),
        ("203.0.113.7:port", UNPARSABLE),
        ("[2001:db8::1", UNPARSABLE),
        ("[2001:db8::1]:x", UNPARSABLE),
        ("2001:db8::1:54321:", UNPARSABLE),
        ("<script>", UNPARSABLE),
    ],
)
def test_every_written_form_of_an_address_names_one_source(written, source):
    assert source_of(written) == source


def test_every_address_of_a_64_is_one_source_and_the_next_64_another():
    first = {source_of(f"2001:db8:aa:bb:{n:x}::{n:x}") for n in range(1, 500)}
    assert first == {"2001:db8:aa:bb::/64"}
    assert source_of("2001:db8:aa:bc::1") != source_of("2001:db8:aa:bb::1")


def test_the_ipv6_prefix_is_a_setting():
    assert source_of("2001:db8:1:2:3::1", ipv6_prefix=48) == "2001:db8:1::/48"
    assert source_of("2001:db8:1:2:3::1", ipv6_prefix=128) == "2001:db8:1:2:3::1/128"


@pytest.mark.parametrize(
    ("header", "proxies", "source"),
    [
        ("198.51.100.1, 203.0.113.7", 1, "203.0.113.7"),
        ("198.51.100.1, 203.0.113.7, 10.0.0.2", 2, "203.0.113.7"),
        ("forged, 198.51.100.1, [2001:db8::5]:1234, 10.0.0.2", 2, "2001:db8::/64"),
        ("203.0.113.7", 2, "203.0.113.7"),  # fewer hops than proxies: the leftmost
        ("", 1, UNPARSABLE),
        (None, 1, UNPARSABLE),
        (" , ,", 1, UNPARSABLE),
    ],
)
def test_the_source_is_the_entry_behind_the_trusted_proxies(header, proxies, source):
    assert forwarded_source(header, proxies, 64) == source
