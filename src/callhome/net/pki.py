"""Certificates for the reverse-tls orientation: identities, a small CA, and the manager's
decision about the certificate chain a device presents.

Identity of a certificate
    ``SHA256:`` followed by the SHA-256 digest of the DER leaf certificate in upper-case
    colon-separated hex, i.e. what ``openssl x509 -noout -fingerprint -sha256`` prints after
    ``=`` (and the digest RFC 7589's cert-to-name fingerprints carry). The colons tell it
    apart from an SSH key's base64 ``SHA256:`` fingerprint at a glance.

Identity of a mapped certificate
    ``x509-name:NAME`` when the chain verified to a configured CA and a cert-to-name rule
    (RFC 7407) mapped the certificate to NAME. It stays the same when the device gets a new
    certificate for the same name, so approving ``x509-name:NAME`` once (even before the
    device ever calls: the identifier known in advance of RFC 8071 C5/C6) admits every
    valid, unrevoked certificate the CA issues for it.

The CA (``callhome pki``) writes PEM files: ``ca.crt``/``ca.key``, ``NAME.crt`` (leaf, then
the CA certificate) and ``NAME.key`` for each certificate issued, and ``crl.pem``. Keys are
ECDSA P-256 (default) or Ed25519, written private (0600).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import itertools
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from callhome.config import CertToNameRule
from callhome.errors import ConfigError
from callhome.identity import Identity
from callhome.net.keys import write_private

log = logging.getLogger(__name__)

MAPPED_PREFIX = "x509-name:"
MAX_CHAIN = 8
KeyType = Literal["p256", "ed25519"]
Role = Literal["device", "manager"]

# --------------------------------------------------------------------------------------
# Fingerprints and identities
# --------------------------------------------------------------------------------------


def cert_fingerprint(der: bytes) -> str:
    """``SHA256:AB:CD:...`` of a DER certificate."""
    return "SHA256:" + ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def normalize_fingerprint(text: str) -> str:
    """A SHA-256 certificate fingerprint in our form, from the forms people paste.

    Accepted: ``SHA256:ab:cd:...``, ``sha256 Fingerprint=AB:CD:...`` (openssl), RFC 7589's
    ``04:AB:...`` (hash algorithm 4 = sha256 first), and 64 hex digits with or without colons.
    """
    value = text.strip()
    if "=" in value:
        value = value.rsplit("=", 1)[1]
    if value.upper().startswith("SHA256:"):
        value = value[7:]
    digits = value.replace(":", "").replace(" ", "").lower()
    if len(digits) == 66 and digits.startswith("04"):
        digits = digits[2:]
    if not re.fullmatch(r"[0-9a-f]{64}", digits):
        raise ConfigError(f"not a SHA-256 certificate fingerprint: {text!r}")
    return "SHA256:" + ":".join(digits[i : i + 2].upper() for i in range(0, 64, 2))


def key_type_of(cert: x509.Certificate) -> str:
    """``x509-`` and the certificate's key algorithm: x509-ed25519, x509-ecdsa-p256 ..."""
    key = cert.public_key()
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "x509-ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "x509-ed448"
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "p256", "secp384r1": "p384", "secp521r1": "p521"}
        return f"x509-ecdsa-{curve.get(key.curve.name, key.curve.name)}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"x509-rsa-{key.key_size}"
    return "x509"


def cert_identity(cert: x509.Certificate) -> Identity:
    """The Identity of a certificate: its fingerprint."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return Identity("x509", cert_fingerprint(der), key_type_of(cert))


def common_name(cert: x509.Certificate) -> str:
    """The certificate's subject CN ('' if none)."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def mapped_identity(name: str, cert: x509.Certificate) -> Identity:
    """The Identity of a CA-issued certificate a cert-to-name rule mapped to ``name``."""
    return Identity("x509", MAPPED_PREFIX + name, key_type_of(cert))


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def _pem_blocks(data: bytes, label: bytes) -> list[bytes]:
    pattern = re.compile(
        rb"-----BEGIN " + label + rb"-----.+?-----END " + label + rb"-----", re.DOTALL
    )
    return pattern.findall(data)


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM (or single DER) file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read certificate file {path}: {exc.strerror}") from None
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise ConfigError(f"bad certificate file {path}: {exc}") from None
    if not certs:
        raise ConfigError(f"no certificate in {path}")
    return certs


def load_crls(path: Path) -> list[x509.CertificateRevocationList]:
    """Every CRL in a PEM (or single DER) file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read CRL file {path}: {exc.strerror}") from None
    try:
        if b"-----BEGIN" in data:
            return [x509.load_pem_x509_crl(b) for b in _pem_blocks(data, b"X509 CRL")]
        return [x509.load_der_x509_crl(data)]
    except ValueError as exc:
        raise ConfigError(f"bad CRL file {path}: {exc}") from None


def file_fingerprint(path: Path) -> str:
    """The fingerprint of the first certificate in a file."""
    return cert_identity(load_certificates(path)[0]).fingerprint


# --------------------------------------------------------------------------------------
# The manager's decision
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertDecision:
    """What the manager makes of a device's certificate chain, before any NETCONF.

    ``identity`` is what goes to ``Admission.admit`` (None: refused outright, ``reason``
    says why); ``leaf`` is the fingerprint identity of the certificate in any case (None
    only if no readable certificate came). ``reason`` also says how a certificate was
    trusted when it was.
    """

    identity: Identity | None
    leaf: Identity | None
    reason: str
    mapped_name: str | None = None


class _Invalid(Exception):
    """The chain leads to a configured CA but fails a check: refused."""


class _Untrusted(Exception):
    """The chain does not lead to a configured CA."""


def _utc(now: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(now, dt.UTC)


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _check_time(cert: x509.Certificate, when: dt.datetime, what: str) -> None:
    if when < cert.not_valid_before_utc:
        raise _Invalid(f"{what} {_subject(cert)} is not valid before {cert.not_valid_before_utc}")
    if when > cert.not_valid_after_utc:
        raise _Invalid(f"{what} {_subject(cert)} expired on {cert.not_valid_after_utc}")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> object | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


class CertPolicy:
    """How the manager judges a device certificate (RFC 8071 C5/C6 with RFC 7589).

    1. The leaf must be within its validity period, and fit for a TLS server if it limits
       its extended key usage.
    2. If its chain (as presented, completed by the configured CAs) verifies to a configured
       CA, every certificate on the path is checked for time, CA constraints and revocation
       (configured CRLs); any failure refuses it. The first cert-to-name rule that maps it
       gives its identity ``x509-name:NAME``; with no rule mapping it, its fingerprint.
    3. A chain that leads to no configured CA is known by its fingerprint (pinned, like an
       SSH key) if ``allow_pinned``, and refused otherwise.
    """

    def __init__(
        self,
        anchors: Sequence[x509.Certificate] = (),
        crl_files: Sequence[Path] = (),
        rules: Sequence[CertToNameRule] = (),
        *,
        allow_pinned: bool = True,
    ) -> None:
        self.anchors = list(anchors)
        self.rules = [(normalize_fingerprint(r.fingerprint), r) for r in rules]  # normalized once
        for _, rule in self.rules:
            if rule.map_type == "specified" and not rule.name:
                raise ConfigError("a cert-to-name rule of map_type 'specified' needs a name")
        self.allow_pinned = allow_pinned
        self._crl_files = list(crl_files)
        self._crl_stamp: tuple[float, ...] = ()
        self._crls: list[x509.CertificateRevocationList] = []
        self._reload_crls()

    @classmethod
    def from_files(
        cls,
        ca_files: Iterable[Path],
        crl_files: Iterable[Path],
        rules: Sequence[CertToNameRule],
        *,
        allow_pinned: bool = True,
    ) -> CertPolicy:
        anchors = [c for path in ca_files for c in load_certificates(path)]
        return cls(anchors, list(crl_files), rules, allow_pinned=allow_pinned)

    def _reload_crls(self) -> None:
        """Read the CRL files again if any changed (an operator replaces them in place)."""
        stamp: list[float] = []
        for path in self._crl_files:
            try:
                stamp.append(path.stat().st_mtime)
            except OSError:
                stamp.append(-1.0)
        if tuple(stamp) == self._crl_stamp:
            return
        crls: list[x509.CertificateRevocationList] = []
        for path in self._crl_files:
            try:
                crls += load_crls(path)
            except ConfigError as exc:
                if not self._crl_stamp:
                    raise
                log.warning("keeping the previous CRLs: %s", exc)
                return
        self._crls = crls
        self._crl_stamp = tuple(stamp)

    # -- deciding --------------------------------------------------------------------------
    def decide(self, chain_der: Sequence[bytes], now: float) -> CertDecision:
        """Judge the chain a device presented (leaf first), at time ``now`` (unix seconds)."""
        if not chain_der:
            return CertDecision(None, None, "the device presented no certificate")
        try:
            leaf = x509.load_der_x509_certificate(chain_der[0])
        except ValueError as exc:
            return CertDecision(None, None, f"unreadable device certificate: {exc}")
        presented = []
        for der in chain_der[1:]:
            try:
                presented.append(x509.load_der_x509_certificate(der))
            except ValueError:
                continue
        leaf_id = cert_identity(leaf)
        when = _utc(now)
        try:
            _check_time(leaf, when, "certificate")
            self._check_leaf_usage(leaf)
            path = self._path(leaf, presented)
            self._check_path(path, when)
        except _Invalid as exc:
            return CertDecision(None, leaf_id, f"certificate refused: {exc}")
        except _Untrusted as exc:
            if not self.allow_pinned:
                return CertDecision(None, leaf_id, f"certificate refused: {exc}")
            return CertDecision(leaf_id, leaf_id, f"pinned by fingerprint ({exc})")
        anchor = _subject(path[-1])
        name = self._map(path)
        if name is None:
            return CertDecision(
                leaf_id, leaf_id, f"issued by {anchor}; no cert-to-name rule maps it: pinned"
            )
        return CertDecision(
            mapped_identity(name, leaf), leaf_id, f"issued by {anchor}; mapped to {name!r}", name
        )

    @staticmethod
    def _check_leaf_usage(leaf: x509.Certificate) -> None:
        eku = _extension(leaf, x509.ExtendedKeyUsage)
        if isinstance(eku, x509.ExtendedKeyUsage):
            allowed = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
            if not allowed.intersection(eku):
                raise _Invalid("certificate is not for TLS servers (extended key usage)")

    def _path(
        self, leaf: x509.Certificate, presented: list[x509.Certificate]
    ) -> list[x509.Certificate]:
        """leaf ... anchor; raises _Untrusted if no configured CA is reached."""
        if leaf in self.anchors:
            return [leaf]
        path = [leaf]
        broken: str | None = None
        current = leaf
        for _ in range(MAX_CHAIN):
            named = [a for a in self.anchors if a.subject == current.issuer]
            if named:
                for anchor in named:
                    if _issued_by(current, anchor):
                        if broken:
                            raise _Invalid(broken)
                        return [*path, anchor]
                raise _Invalid(
                    f"signature of {_subject(current)} does not verify with CA {_subject(named[0])}"
                )
            candidates = [c for c in presented if c.subject == current.issuer and c not in path]
            if not candidates or current.issuer == current.subject:
                break
            issuer = next((c for c in candidates if _issued_by(current, c)), None)
            if issuer is None:
                issuer = candidates[0]
                broken = broken or f"signature of {_subject(current)} does not verify"
            path.append(issuer)
            current = issuer
        raise _Untrusted(f"not issued by a configured CA; issuer {current.issuer.rfc4514_string()}")

    def _check_path(self, path: list[x509.Certificate], when: dt.datetime) -> None:
        for depth, issuer in enumerate(path[1:], start=1):
            _check_time(issuer, when, "CA certificate")
            constraints = _extension(issuer, x509.BasicConstraints)
            if not isinstance(constraints, x509.BasicConstraints) or not constraints.ca:
                raise _Invalid(f"{_subject(issuer)} is not a CA")
            if constraints.path_length is not None and depth - 1 > constraints.path_length:
                raise _Invalid(f"path too long for {_subject(issuer)}")
            usage = _extension(issuer, x509.KeyUsage)
            if isinstance(usage, x509.KeyUsage) and not usage.key_cert_sign:
                raise _Invalid(f"{_subject(issuer)} may not sign certificates")
        self._reload_crls()
        for cert, issuer in itertools.pairwise(path):
            for crl in self._crls:
                if crl.issuer != issuer.subject:
                    continue
                if not self._crl_signed_by(crl, issuer):
                    continue
                if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                    raise _Invalid(f"{_subject(cert)} (serial {cert.serial_number:x}) is revoked")

    @staticmethod
    def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
        try:
            return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False

    def _map(self, path: list[x509.Certificate]) -> str | None:
        """The first cert-to-name rule whose fingerprint is on the path and that yields a name."""
        on_path = {cert_identity(c).fingerprint for c in path}
        for fingerprint, rule in self.rules:
            if fingerprint in on_path:
                name = map_certificate(path[0], rule)
                if name:
                    return name
        return None


def map_certificate(
    cert: x509.Certificate, rule: CertToNameRule, *, ipv6_hex: bool = False
) -> str | None:
    """The name one rule gives a certificate (RFC 7407 map types), or None.

    ``ipv6_hex``: an IPv6 subjectAltName becomes 32 lower-case hex digits without colons,
    as RFC 6353's SANIpAddress mapping writes it (else its usual text form)."""
    if rule.map_type == "specified":
        return rule.name
    if rule.map_type == "common-name":
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        value = names[0].value if names else None
        return value if isinstance(value, str) and value else None
    san = _extension(cert, x509.SubjectAlternativeName)
    if not isinstance(san, x509.SubjectAlternativeName):
        return None
    for general in san:
        if isinstance(general, x509.RFC822Name) and rule.map_type in (
            "san-rfc822-name",
            "san-any",
        ):
            local, _, host = general.value.rpartition("@")
            return f"{local}@{host.lower()}" if local else general.value.lower()
        if isinstance(general, x509.DNSName) and rule.map_type in ("san-dns-name", "san-any"):
            return general.value.lower()
        if isinstance(general, x509.IPAddress) and rule.map_type in ("san-ip-address", "san-any"):
            address = general.value
            if ipv6_hex and isinstance(address, ipaddress.IPv6Address):
                return address.packed.hex()
            return str(address)
    return None


MAX_SECURITY_NAME = 32
"""Longest securityName, in octets (SnmpAdminString (SIZE(1..32)) of RFC 3411)."""


def security_name_for(
    chain: Sequence[x509.Certificate], rules: Sequence[CertToNameRule]
) -> str | None:
    """The SNMP securityName of a TLS peer by RFC 6353's certToTSN rules, or None.

    ``chain`` is the peer's verified chain, leaf first (its trust anchor last). Rules are
    tried in order; one applies when its fingerprint is that of a certificate on the chain
    (the leaf, or a CA above it) and its map type yields a name of 1 to 32 octets; the
    first that applies gives the name. None: no rule does, and the peer is refused.
    """
    if not chain:
        return None
    on_chain = {cert_identity(c).fingerprint for c in chain}
    for rule in rules:
        if normalize_fingerprint(rule.fingerprint) not in on_chain:
            continue
        if rule.map_type == "specified" and not rule.name:
            raise ConfigError("a cert-to-name rule of map_type 'specified' needs a name")
        name = map_certificate(chain[0], rule, ipv6_hex=True)
        if name and len(name.encode()) <= MAX_SECURITY_NAME:
            return name
    return None


# --------------------------------------------------------------------------------------
# A small CA
# --------------------------------------------------------------------------------------

CA_CERT, CA_KEY, CRL_FILE, REVOKED_FILE = "ca.crt", "ca.key", "crl.pem", "revoked.txt"


def _new_key(key_type: KeyType) -> ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey:
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def _sign_hash(key: object) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> None:
    write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Ca:
    """A CA on disk: its certificate and key."""

    directory: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

    @property
    def cert_file(self) -> Path:
        return self.directory / CA_CERT

    @property
    def crl_file(self) -> Path:
        return self.directory / CRL_FILE

    @classmethod
    def open(cls, directory: Path) -> Ca:
        cert = load_certificates(directory / CA_CERT)[0]
        try:
            key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the CA key in {directory}: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise ConfigError(f"the CA key in {directory} is neither ECDSA nor Ed25519")
        return cls(directory, cert, key)


def init_ca(
    directory: Path, name: str = "callhome CA", *, key_type: KeyType = "p256", days: int = 3650
) -> Ca:
    """Create a CA in ``directory`` (refuses to overwrite one), with an empty CRL."""
    if (directory / CA_KEY).exists():
        raise ConfigError(f"{directory} already holds a CA")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = _new_key(key_type)
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, _sign_hash(key))
    )
    _write_key(directory / CA_KEY, key)
    (directory / CA_CERT).write_bytes(_pem(cert))
    ca = Ca(directory, cert, key)
    write_crl(ca)
    return ca


@dataclass(frozen=True)
class Issued:
    """A certificate written by :func:`issue`."""

    cert_file: Path
    key_file: Path
    cert: x509.Certificate

    @property
    def fingerprint(self) -> str:
        return cert_identity(self.cert).fingerprint


def _is_dns(name: str) -> bool:
    return bool(
        re.fullmatch(
            r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
            r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
            name,
        )
    )


def issue(
    ca: Ca,
    role: Role,
    name: str,
    *,
    dns: Sequence[str] | None = None,
    ips: Sequence[str] = (),
    emails: Sequence[str] = (),
    key_type: KeyType = "p256",
    days: int = 825,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    out: Path | None = None,
) -> Issued:
    """Issue a certificate for a device (TLS server) or a manager (TLS client).

    The subject is ``CN=name``; subjectAltNames are ``dns`` (default: ``name`` when it is a
    DNS name), ``ips`` and ``emails``. Writes ``NAME.crt`` (leaf then CA) and ``NAME.key``
    in ``out`` (default: the CA's folder).
    """
    out = out or ca.directory
    key = _new_key(key_type)
    public = key.public_key()
    now = dt.datetime.now(dt.UTC)
    start = not_before or now - dt.timedelta(minutes=5)
    end = not_after or now + dt.timedelta(days=days)
    dns_names = list(dns) if dns is not None else ([name] if _is_dns(name) else [])
    general: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    try:
        general += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    general += [x509.RFC822Name(e) for e in emails]
    usage = ExtendedKeyUsageOID.SERVER_AUTH if role == "device" else ExtendedKeyUsageOID.CLIENT_AUTH
    ca_public = ca.cert.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if isinstance(ca_public, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False
        )
    if general:
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    cert = builder.sign(ca.key, _sign_hash(ca.key))
    safe = re.sub(r"[^A-Za-z0-9._@-]", "_", name)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_file, cert_file = out / f"{safe}.key", out / f"{safe}.crt"
    _write_key(key_file, key)
    cert_file.write_bytes(_pem(cert) + _pem(ca.cert))
    return Issued(cert_file, key_file, cert)


def revoke(ca: Ca, cert: x509.Certificate) -> Path:
    """Add a certificate the CA issued to its CRL; returns the CRL file."""
    if cert.issuer != ca.cert.subject:
        raise ConfigError(f"{_subject(cert)} was not issued by this CA")
    listed = ca.directory / REVOKED_FILE
    when = int(dt.datetime.now(dt.UTC).timestamp())
    with listed.open("a") as f:
        f.write(f"{cert.serial_number:x} {when}\n")
    return write_crl(ca)


def write_crl(ca: Ca, *, days: int = 30) -> Path:
    """(Re)write the CA's CRL from its list of revoked serial numbers."""
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=days))
    )
    listed = ca.directory / REVOKED_FILE
    lines = listed.read_text().splitlines() if listed.exists() else []
    for line in lines:
        serial, _, when = line.partition(" ")
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(int(serial, 16))
            .revocation_date(dt.datetime.fromtimestamp(int(when or 0), dt.UTC))
            .build()
        )
    crl = builder.sign(ca.key, _sign_hash(ca.key))
    tmp = ca.crl_file.with_name(CRL_FILE + ".tmp")
    tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    tmp.replace(ca.crl_file)
    return ca.crl_file
