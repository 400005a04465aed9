"""SSH keys on disk: generated private (0600), loaded once, fingerprinted one way."""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh

from callhome.errors import ConfigError
from callhome.identity import Identity


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file that is private from the first byte (0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_key(path: Path) -> asyncssh.SSHKey:
    """Load the Ed25519 key at ``path``, generating it (0600, .pub beside it) if missing."""
    if path.exists():
        return load_private_key(path)
    key = asyncssh.generate_private_key("ssh-ed25519")
    write_private(path, key.export_private_key())
    path.with_name(path.name + ".pub").write_bytes(key.export_public_key())
    return key


def load_private_key(path: Path) -> asyncssh.SSHKey:
    try:
        return asyncssh.read_private_key(path)
    except (OSError, asyncssh.KeyImportError) as exc:
        raise ConfigError(f"cannot load private key {path}: {exc}") from None


def parse_public_key(text: str) -> asyncssh.SSHKey:
    """A public key in OpenSSH one-line form (``ssh-ed25519 AAAA... comment``)."""
    try:
        return asyncssh.import_public_key(text.strip())
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ConfigError(f"bad public key {text[:40]!r}...: {exc}") from None


def identity_of(key: asyncssh.SSHKey) -> Identity:
    """The Identity of an SSH public (or private) key."""
    return Identity.from_ssh_public_blob(key.get_algorithm(), key.public_data)


def public_line(key: asyncssh.SSHKey, comment: str = "") -> str:
    """The OpenSSH one-line public key."""
    line = key.export_public_key().decode("ascii").strip()
    parts = line.split()
    return " ".join(parts[:2] + ([comment] if comment else []))
