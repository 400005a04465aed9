"""Capability URIs (RFC 6020 section 5.6.4, RFC 7950 section 5.6.4) and YANG libraries."""

from __future__ import annotations

import pytest
from lxml import etree

from callhome.proto.netconf.capabilities import (
    YANG_LIBRARY_NS,
    CapabilityError,
    ModuleCapability,
    ModuleInfo,
    ModuleSet,
    ProtocolCapability,
    YangLibraryCapability,
    parse_capability,
    parse_modules_state,
    parse_yang_library,
)

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


def test_module_capabilities_parse_with_their_parameters() -> None:
    cap = parse_capability(
        f"{NC}?module=ietf-netconf&revision=2011-06-01&features=writable-running,candidate"
    )
    assert cap == ModuleCapability(
        NC, "ietf-netconf", "2011-06-01", ("writable-running", "candidate")
    )
    dev = parse_capability("urn:x?module=m&revision=2020-01-02&deviations=m-dev,other-dev")
    assert isinstance(dev, ModuleCapability) and dev.deviations == ("m-dev", "other-dev")
    assert parse_capability("urn:x?module=m") == ModuleCapability("urn:x", "m", None)
    # an escaped character in a parameter value is unescaped
    assert parse_capability("urn:x?module=m&features=a%2Cb").features == ("a", "b")  # type: ignore[union-attr]


def test_protocol_and_library_capabilities() -> None:
    assert parse_capability("urn:ietf:params:netconf:base:1.1") == ProtocolCapability(
        "urn:ietf:params:netconf:base:1.1"
    )
    with_defaults = "urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit"
    assert isinstance(parse_capability(with_defaults), ProtocolCapability)
    lib = parse_capability(
        "urn:ietf:params:netconf:capability:yang-library:1.0?revision=2016-06-21&module-set-id=ab1"
    )
    assert lib == YangLibraryCapability("1.0", "2016-06-21", module_set_id="ab1")
    lib11 = parse_capability(
        "urn:ietf:params:netconf:capability:yang-library:1.1?revision=2019-01-04&content-id=7"
    )
    assert lib11 == YangLibraryCapability("1.1", "2019-01-04", content_id="7")
    assert lib.key != lib11.key  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "uri, why",
    [
        ("urn:x?module=&revision=2020-01-01", "not a YANG identifier"),
        ("urn:x?module=1abc", "not a YANG identifier"),
        ("urn:x?module=m&revision=20-1-1", "not YYYY-MM-DD"),
        ("urn:x?module=m&revision=2020-01-01&revision=2021-01-01", "given twice"),
        ("urn:x?module=m&colour=red", "unknown parameter"),
        ("urn:x?module=m&features=a,,b", "not a YANG identifier"),
        ("urn:x?module=m&features", "not NAME=VALUE"),
        ("nocolon?module=m", "not a namespace URI"),
        ("urn:ietf:params:netconf:capability:yang-library:1.0?module-set-id=1", "revision"),
        ("urn:ietf:params:netconf:capability:yang-library:1.0?revision=2016-06-21", "needs"),
        ("urn:ietf:params:netconf:capability:yang-library:2.0?revision=2016-06-21", "version"),
    ],
)
def test_malformed_capabilities_say_why(uri: str, why: str) -> None:
    with pytest.raises(CapabilityError, match=why):
        parse_capability(uri)


def _library(body: str) -> etree._Element:
    return etree.fromstring(f'<data xmlns="{NC}"><x xmlns="{YANG_LIBRARY_NS}">{body}</x></data>')


def test_modules_state_and_yang_library_are_read() -> None:
    data = etree.fromstring(
        f'<data xmlns="{NC}"><modules-state xmlns="{YANG_LIBRARY_NS}">'
        "<module-set-id>42</module-set-id>"
        "<module><name>a</name><revision>2020-01-01</revision><namespace>urn:a</namespace>"
        "<feature>f</feature><conformance-type>implement</conformance-type></module>"
        "<module><name>b</name><revision/><namespace>urn:b</namespace>"
        "<conformance-type>import</conformance-type></module>"
        "</modules-state></data>"
    )
    set_id, rows = parse_modules_state(data)
    assert set_id == "42"
    assert rows == [
        ModuleInfo("a", "2020-01-01", "urn:a", ("f",)),
        ModuleInfo("b", None, "urn:b", implemented=False),
    ]
    rfc8525 = etree.fromstring(
        f'<data xmlns="{NC}"><yang-library xmlns="{YANG_LIBRARY_NS}"><module-set><name>s</name>'
        "<module><name>c</name><revision>2021-02-03</revision><namespace>urn:c</namespace>"
        "</module><import-only-module><name>d</name><revision>2019-01-01</revision>"
        "<namespace>urn:d</namespace></import-only-module></module-set>"
        "<content-id>9</content-id></yang-library></data>"
    )
    content_id, rows = parse_yang_library(rfc8525)
    assert content_id == "9"
    assert [(r.name, r.implemented) for r in rows] == [("c", True), ("d", False)]


def test_a_module_set_joins_hello_and_library() -> None:
    hello = [
        f"{NC}?module=ietf-netconf&revision=2011-06-01",
        "urn:ietf:params:netconf:capability:yang-library:1.0?revision=2016-06-21&module-set-id=1",
        "urn:bad?module=",
    ]
    only_hello = ModuleSet(hello)
    assert only_hello.needs_library and only_hello.problems
    assert only_hello.implemented("ietf-netconf") is not None
    assert only_hello.implemented("ietf-netconf-server") is None
    server = ModuleInfo("ietf-netconf-server", "2023-12-28", "urn:s")
    joined = ModuleSet(hello, [server, ModuleInfo("t", None, "urn:t", implemented=False)])
    assert not joined.needs_library
    assert joined.implemented("ietf-netconf-server") == server
    assert joined.implemented("t") is None
