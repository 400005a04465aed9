"""``callhome pki``: a small CA for the reverse-tls orientation (no API, files only)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

EXIT_OK = 0


def cmd_pki_init(args: argparse.Namespace) -> int:
    from callhome.net.pki import init_ca

    ca = init_ca(Path(args.dir), args.name, key_type=args.key_type, days=args.days)
    print(f"wrote {ca.cert_file}, {ca.directory / 'ca.key'} (0600) and {ca.crl_file}")
    print(f"CA fingerprint: {_fingerprint(ca.cert_file)}")
    return EXIT_OK


def cmd_pki_issue(args: argparse.Namespace) -> int:
    from callhome.config import CertToNameRule
    from callhome.net.pki import Ca, issue, map_certificate

    ca = Ca.open(Path(args.dir))
    issued = issue(
        ca,
        args.role,
        args.name,
        dns=args.dns,
        ips=args.ip or [],
        emails=args.email or [],
        key_type=args.key_type,
        days=args.days,
        out=Path(args.out) if args.out else None,
    )
    print(f"wrote {issued.cert_file} (certificate, then the CA's) and {issued.key_file} (0600)")
    print(f"fingerprint: {issued.fingerprint}")
    if args.role == "device":
        print("approve it on the manager by its fingerprint:")
        print(f"callhome approve {issued.fingerprint} --name NAME")
        rule = CertToNameRule(fingerprint=issued.fingerprint, map_type="san-dns-name")
        dns = map_certificate(issued.cert, rule)
        if dns:
            print("or, where a san-dns-name cert-to-name rule maps this CA's certificates, by name")
            print(f"(known in advance, and kept across renewals): x509-name:{dns}")
    return EXIT_OK


def cmd_pki_revoke(args: argparse.Namespace) -> int:
    from callhome.net.pki import Ca, load_certificates, revoke

    ca = Ca.open(Path(args.dir))
    crl = revoke(ca, load_certificates(Path(args.cert))[0])
    print(f"revoked; wrote {crl}")
    return EXIT_OK


def cmd_pki_fingerprint(args: argparse.Namespace) -> int:
    print(_fingerprint(Path(args.cert)))
    return EXIT_OK


def _fingerprint(path: Path) -> str:
    from callhome.net.pki import file_fingerprint

    return file_fingerprint(path)


def add_parsers(sub: Any) -> None:
    """``callhome pki init|issue|revoke|fingerprint``."""
    s = sub.add_parser("pki", help="a small CA for reverse-tls certificates")
    ops = s.add_subparsers(dest="pki_command", required=True)

    o = ops.add_parser("init", help="create a CA in DIR")
    o.add_argument("dir")
    o.add_argument("--name", default="callhome CA", help="the CA's common name")
    o.add_argument("--key-type", choices=["p256", "ed25519"], default="p256")
    o.add_argument("--days", type=int, default=3650)
    o.set_defaults(daemon=cmd_pki_init)

    o = ops.add_parser("issue", help="issue a device (TLS server) or manager (TLS client) cert")
    o.add_argument("role", choices=["device", "manager"])
    o.add_argument("name", help="common name (and DNS subjectAltName when it is a DNS name)")
    o.add_argument("--dir", default="pki", help="the CA's folder (default: pki)")
    o.add_argument("--out", help="where to write NAME.crt and NAME.key (default: the CA's)")
    o.add_argument("--dns", action="append", help="a DNS subjectAltName (repeatable)")
    o.add_argument("--ip", action="append", help="an IP subjectAltName (repeatable)")
    o.add_argument("--email", action="append", help="an rfc822 subjectAltName (repeatable)")
    o.add_argument("--key-type", choices=["p256", "ed25519"], default="p256")
    o.add_argument("--days", type=int, default=825)
    o.set_defaults(daemon=cmd_pki_issue)

    o = ops.add_parser("revoke", help="add a certificate to the CA's CRL (crl.pem)")
    o.add_argument("cert")
    o.add_argument("--dir", default="pki", help="the CA's folder (default: pki)")
    o.set_defaults(daemon=cmd_pki_revoke)

    o = ops.add_parser("fingerprint", help="the SHA256 identity of a certificate file")
    o.add_argument("cert")
    o.set_defaults(daemon=cmd_pki_fingerprint)
