"""The content-addressed artifact store under ``<root>/artifacts``.

An artifact (a file or a directory) is stored once per content at
``artifacts/<d[:2]>/<digest>/<name>`` and made read-only, so a completed
artifact is never rewritten and any later run (a resume, a cache hit) can
trust it. A file's digest is the plain sha256 of its bytes (``sha256sum``
agrees); a directory's is the sha256 of a manifest of its entries (relative
path, kind, executable bit and each file's sha256), always of what is stored.

Artifacts never lead outside themselves: the store holds only regular files
and directories. At ingest, a symbolic link inside a directory artifact whose
target lies inside the same artifact is materialised (stored as a copy of its
target); one that points outside it (``/proc/self/environ``, ``../../x``) or
nowhere is refused (:class:`LinkError`), and so is an output that is itself a
link. Only an importer, which names a path on purpose, may name a link: its
target is what gets stored.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20
#: Artifacts up to this size are re-hashed on every cache hit; bigger ones are
#: checked by size (the store is read-only, so a change needs a chmod first).
REHASH_LIMIT = 256 << 20


class LinkError(ValueError):
    """An artifact holds a symbolic link the store will not keep (one line: which, and why)."""


def _links(root: Path) -> list[str]:
    """Relative paths of every symbolic link under directory ``root``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in (*dirnames, *filenames):
            full = os.path.join(dirpath, entry)
            if os.path.islink(full):
                found.append(os.path.relpath(full, root))
    return sorted(found)


def check_links(root: Path) -> bool:
    """Whether directory ``root`` holds links to materialise; raises :class:`LinkError` for a bad one."""
    links = _links(root)
    base = os.path.realpath(root)
    for rel in links:
        full = os.path.join(root, rel)
        target = os.readlink(full)
        resolved = os.path.realpath(full)
        if not resolved.startswith(base + os.sep) or not os.path.exists(resolved):
            why = "points outside the artifact" if os.path.exists(resolved) else "is dangling"
            raise LinkError(
                f"{rel} is a symbolic link to {target}, which {why}; write the file itself "
                f"into the artifact (links inside an artifact are stored as copies of their "
                f"target only when that target is in the same artifact)"
            )
        if os.path.isdir(resolved) and (
            os.path.dirname(os.path.join(base, rel)) + os.sep
        ).startswith(resolved + os.sep):
            raise LinkError(
                f"{rel} is a symbolic link to {target}, a folder that holds it (a loop)"
            )
    return bool(links)


@dataclass(frozen=True)
class Stored:
    """Where an artifact landed and what it is."""

    uri: str
    sha256: str
    size: int


def _file_digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(_CHUNK)
            if not block:
                break
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def digest(path: Path) -> tuple[str, int]:
    """``(sha256, total size in bytes)`` of a file or a directory tree (symlinks not followed)."""
    st = os.lstat(path)
    if stat.S_ISREG(st.st_mode):
        return _file_digest(path)
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        return hashlib.sha256(f"link\0{target}".encode()).hexdigest(), 0
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{path} is neither a file nor a directory")
    h = hashlib.sha256(b"workbench-tree-v1\n")
    total = 0
    entries: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, path)
        if not filenames and not dirnames and rel_dir != ".":
            entries.append((rel_dir, "d"))
        for fn in filenames:
            full = os.path.join(dirpath, fn)
            rel = os.path.normpath(os.path.join(rel_dir, fn))
            fst = os.lstat(full)
            if stat.S_ISLNK(fst.st_mode):
                entries.append((rel, f"l {os.readlink(full)}"))
            elif stat.S_ISREG(fst.st_mode):
                d, size = _file_digest(Path(full))
                total += size
                x = "x" if fst.st_mode & stat.S_IXUSR else "-"
                entries.append((rel, f"f{x} {d}"))
            else:  # a pipe, socket or device: nothing a copy could hold (copytree fails on it)
                raise ValueError(
                    f"{rel} in {path} is neither a file, a folder nor a link (a pipe, socket "
                    "or device); artifacts hold files and folders"
                )
        # Symlinks to directories show up in dirnames; record, don't follow.
        for dn in list(dirnames):
            full = os.path.join(dirpath, dn)
            if os.path.islink(full):
                entries.append(
                    (os.path.normpath(os.path.join(rel_dir, dn)), f"l {os.readlink(full)}")
                )
                dirnames.remove(dn)
    for rel, what in sorted(entries):
        h.update(f"{what}\0{rel}\n".encode())
    return h.hexdigest(), total


def _make_readonly(path: Path) -> None:
    """Drop write permission everywhere under ``path`` (directories last)."""
    if path.is_symlink():
        return
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path, topdown=False):
            for fn in filenames:
                full = os.path.join(dirpath, fn)
                if not os.path.islink(full):
                    mode = os.lstat(full).st_mode
                    os.chmod(full, stat.S_IMODE(mode) & ~0o222)
            for dn in dirnames:
                full = os.path.join(dirpath, dn)
                if not os.path.islink(full):
                    os.chmod(full, 0o500)
        os.chmod(path, 0o500)
    else:
        os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) & ~0o222)


def make_writable(path: Path) -> None:
    """Give the owner write permission back (before deleting a stored artifact)."""
    if not os.path.lexists(path) or os.path.islink(path):
        return
    if os.path.isdir(path):
        os.chmod(path, 0o700)
        for dirpath, dirnames, filenames in os.walk(path):
            for dn in dirnames:
                full = os.path.join(dirpath, dn)
                if not os.path.islink(full):
                    os.chmod(full, 0o700)
            for fn in filenames:
                full = os.path.join(dirpath, fn)
                if not os.path.islink(full):
                    os.chmod(full, stat.S_IMODE(os.lstat(full).st_mode) | 0o200)
    else:
        os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | 0o200)


def remove(path: Path) -> None:
    """Delete a file or tree even if it was made read-only."""
    if not os.path.lexists(path):
        return
    make_writable(path)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).strip(".")
    return cleaned or "artifact"


class ArtifactStore:
    """Content-addressed, read-only storage for completed artifacts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._verified: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def _tmpdir(self) -> Path:
        tmp = self.root / ".tmp" / uuid.uuid4().hex
        tmp.mkdir(parents=True)
        return tmp

    def ingest(self, src: Path, name: str, *, move: bool, follow: bool = False) -> Stored:
        """Put a file or directory into the store; ``move`` takes it, else it is copied.

        Returns where it lives now. Identical content is stored once: when the
        digest is already present, the existing copy is used. ``src`` itself
        may be a link only with ``follow`` (an importer's path); links inside a
        directory are materialised or refused (:class:`LinkError`).
        """
        if os.path.islink(src):
            if not follow:
                raise LinkError(
                    f"it is a symbolic link to {os.readlink(src)}; write the file or folder "
                    f"itself at the output path (links are not stored)"
                )
            src, move = Path(os.path.realpath(src)), False
        if src.is_dir() and check_links(src):
            return self._materialise(src, name, move=move)
        d, size = digest(src)
        final_dir = self.root / d[:2] / d
        existing = self._existing(final_dir)
        if existing is not None and not self.verify(str(existing), d, size):
            remove(final_dir)  # damaged from outside: store this good copy instead
            existing = None
        if existing is not None:
            if move:
                remove(src)
            return Stored(str(existing), d, size)
        tmp = self._tmpdir()
        target = tmp / _safe_name(name)
        try:
            if move:
                try:
                    os.rename(src, target)
                except OSError as e:
                    if e.errno != errno.EXDEV:
                        raise
                    shutil.move(str(src), str(target))
            elif src.is_dir():
                shutil.copytree(src, target, symlinks=True)
            else:
                shutil.copy2(src, target)
        except BaseException:
            remove(tmp)  # nothing half-copied stays in the store
            raise
        if target.is_dir() and _links(target):  # appeared since it was checked: not stored
            remove(tmp)
            raise LinkError(f"{src} changed while it was stored (a link appeared in it)")
        return self._place(tmp, target, d, size)

    def _materialise(self, src: Path, name: str, *, move: bool) -> Stored:
        """Store a tree whose inner links point inside it: each link becomes a copy of its target."""
        tmp = self._tmpdir()
        target = tmp / _safe_name(name)
        try:
            shutil.copytree(src, target, symlinks=False)
        except BaseException:
            remove(tmp)  # nothing half-copied stays in the store
            raise
        if _links(target):
            remove(tmp)
            raise LinkError(f"{src} changed while it was stored (a link appeared in it)")
        if move:
            remove(src)
        d, size = digest(target)  # of what is stored
        existing = self._existing(self.root / d[:2] / d)
        if existing is not None and self.verify(str(existing), d, size):
            remove(tmp)
            return Stored(str(existing), d, size)
        if existing is not None:
            remove(self.root / d[:2] / d)  # damaged from outside: this copy replaces it
        return self._place(tmp, target, d, size)

    def _place(self, tmp: Path, target: Path, d: str, size: int) -> Stored:
        final_dir = self.root / d[:2] / d
        _make_readonly(target)
        final_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, final_dir)
        except OSError as e:
            # Another run stored the same content at the same moment: use theirs.
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            remove(tmp)
            existing = self._existing(final_dir)
            if existing is None:  # pragma: no cover - a half-removed directory
                raise
            return Stored(str(existing), d, size)
        os.chmod(final_dir, 0o500)
        return Stored(str(final_dir / target.name), d, size)

    @staticmethod
    def _existing(final_dir: Path) -> Path | None:
        try:
            names = sorted(os.listdir(final_dir))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return final_dir / names[0] if names else None

    def verify(self, uri: str, sha256: str, size: int | None) -> bool:
        """True when the stored artifact is present and still has its digest."""
        path = Path(uri)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if size is not None and size > REHASH_LIMIT:
            return digest_size_only(path) == size
        key = (uri, st.st_mtime_ns, st.st_ino)
        with self._lock:
            if self._verified.get(key) == sha256:
                return True
        try:
            d, _ = digest(path)
        except (OSError, ValueError):
            return False
        if d == sha256:
            with self._lock:
                self._verified[key] = d
            return True
        return False

    def clear_tmp(self) -> None:
        remove(self.root / ".tmp")


def digest_size_only(path: Path) -> int:
    if path.is_dir():
        total = 0
        for dirpath, _, filenames in os.walk(path):
            for fn in filenames:
                full = os.path.join(dirpath, fn)
                if not os.path.islink(full):
                    total += os.lstat(full).st_size
        return total
    return os.lstat(path).st_size
