"""Finding the device's YANG module files: by path, by folder, and by name for imports.

Files are read once and their headers parsed (``callhome.agent.yang.libyang.read_header``). A
file must be named ``NAME.yang`` or ``NAME@REVISION.yang`` (RFC 7950 section 5.2), as libyang
finds modules by their file names too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from callhome.agent.yang.libyang import ModuleHeader, YangLibraryError, read_header
from callhome.errors import ConfigError

__all__ = ["Finder", "module_files"]


def module_files(entries: Sequence[Path]) -> list[Path]:
    """The ``.yang`` files named, or found in the folders named, each once."""
    found: list[Path] = []
    for entry in entries:
        if entry.is_dir():
            found.extend(sorted(entry.glob("*.yang")))
        elif entry.is_file():
            found.append(entry)
        else:
            raise ConfigError(f"yang: {entry} is neither a file nor a folder")
    unique: dict[Path, None] = {}
    for path in found:
        unique.setdefault(path.resolve(), None)
    return list(unique)


def _named_right(path: Path, header: ModuleHeader) -> bool:
    stem = path.name.removesuffix(".yang")
    return stem in (header.name, f"{header.name}@{header.revision}")


class Finder:
    """Module files by name, from the configured files and folders."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self._folders = list(dict.fromkeys(p.resolve() for p in folders))
        self._read: dict[Path, tuple[ModuleHeader, str]] = {}

    def read(self, path: Path) -> tuple[ModuleHeader, str]:
        got = self._read.get(path)
        if got is None:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"yang: cannot read {path}: {exc}") from None
            try:
                header = read_header(text)
            except YangLibraryError as exc:
                raise ConfigError(f"yang: {path}: {exc}") from None
            if not _named_right(path, header):
                raise ConfigError(
                    f"yang: {path} holds {header.kind} {header.name!r}: name the file "
                    f"{header.name}.yang or {header.name}@{header.revision or 'REVISION'}.yang"
                )
            got = self._read[path] = (header, text)
        return got

    def find(self, name: str, revision: str | None) -> tuple[Path, ModuleHeader, str] | None:
        """The file of ``name`` at ``revision`` (None: its newest revision found)."""
        best: tuple[Path, ModuleHeader, str] | None = None
        for folder in self._folders:
            candidates = [folder / f"{name}.yang", *sorted(folder.glob(f"{name}@*.yang"))]
            for path in candidates:
                if not path.is_file():
                    continue
                header, text = self.read(path.resolve())
                if header.name != name:
                    continue
                if revision is not None and header.revision == revision:
                    return path.resolve(), header, text
                if revision is None and (best is None or header.revision > best[1].revision):
                    best = (path.resolve(), header, text)
        return best
