"""The syntax of identities an operator types (callhome.identity.parse_identity)."""

from __future__ import annotations

import hashlib

import pytest

from callhome.errors import ConfigError
from callhome.identity import is_identity, parse_identity, ssh_fingerprint
from callhome.net.pki import cert_fingerprint


def test_what_the_manager_computes_parses_unchanged() -> None:
    for blob in (b"", b"key one", bytes(range(256))):
        assert parse_identity(ssh_fingerprint(blob)) == ssh_fingerprint(blob)
        assert parse_identity(cert_fingerprint(blob)) == cert_fingerprint(blob)
    assert parse_identity("x509-name:pdu-7.example.net") == "x509-name:pdu-7.example.net"
    assert parse_identity("x509-name:Rack 4 PDU") == "x509-name:Rack 4 PDU"


def test_a_certificate_fingerprint_is_written_as_openssl_prints_it() -> None:
    digest = hashlib.sha256(b"cert").digest()
    lower = "sha256:" + ":".join(f"{b:02x}" for b in digest)
    assert parse_identity(lower) == cert_fingerprint(b"cert")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("SHA256:", "43 base64 characters, not 0"),
        ("SHA256:" + "A" * 44, "not 44"),
        ("SHA256:" + "A" * 42 + "=", "no '=' padding"),
        ("SHA256:" + "A" * 42 + "_", "only A-Z"),
        ("SHA256:" + ":".join(["AB"] * 33), "32 hex bytes"),
        ("SHA256:" + ":".join(["G0"] * 32), "32 hex bytes"),
        ("x509-name:", "empty"),
        ("x509-name:name ", "space at an end"),
        ("x509-name:a\nb", "control character"),
        ("x509-name:" + "n" * 1025, "longer than 1024"),
        ("MD5:ab:cd", "expected"),
        ("dev1", "expected"),
    ],
)
def test_malformed_identities_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_identity(text)
    message = str(caught.value)
    assert message.startswith("not a device identity: ")
    assert why in message
    assert "x509-name:NAME" in message


def test_a_long_input_is_cut_short_in_the_message() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_identity("SHA256:" + "A" * 5000)
    assert len(str(caught.value)) < 600


def test_names_and_identities_are_told_apart() -> None:
    assert not is_identity("pdu-7")
    assert is_identity("SHA256:" + "A" * 43)
    assert is_identity("x509-name:pdu-7")
