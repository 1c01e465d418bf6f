"""Local stand-ins for Kubernetes secrets and config maps.

``workbench secrets set NAME KEY=VALUE...`` (and ``configmaps``) keeps one
JSON file per object under ``<root>/secrets/`` or ``<root>/configmaps/``,
owner-only (0600 in a 0700 folder). Tasks get the keys as environment
variables or files, as the platform document says (``platform.py``). A
secret's value is read only when an attempt starts; everything the engine
records about it (cache keys, notices, errors) uses its name, key, or a digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from urllib.parse import quote, quote_plus

from workbench_dsl.errors import UsageError

KINDS = {"secret": "secrets", "configmap": "configmaps"}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def set_command(kind: str) -> str:
    """The command that creates an object of ``kind`` (for messages)."""
    return f"workbench {KINDS[kind]} set"


class ObjectStore:
    """Secrets or config maps under the local root (``kind`` is ``secret`` or ``configmap``)."""

    def __init__(self, root: Path, kind: str) -> None:
        self.kind = kind
        self.folder = Path(root) / KINDS[kind]

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            hint = (
                " (kfp-kubernetes leaves a pipeline parameter inside an f-string unfilled, as "
                "a cluster would: pass the parameter itself, or a task's output)"
                if "{{channel:" in name
                else ""
            )
            raise UsageError(
                f"{self.kind} name {name!r} is not a valid Kubernetes name: use lower-case "
                f"letters, digits, '-' and '.'{hint}"
            )
        return self.folder / f"{name}.json"

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.json"))

    def get(self, name: str) -> dict[str, str] | None:
        try:
            data = json.loads(self._path(name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return {str(k): str(v) for k, v in data.items()}

    def keys(self, name: str) -> list[str] | None:
        data = self.get(name)
        return None if data is None else sorted(data)

    def set(self, name: str, values: dict[str, str], *, replace: bool = False) -> list[str]:
        """Add or change keys of ``name`` (all of them with ``replace``); returns its keys."""
        path = self._path(name)
        for key in values:
            if not _KEY.match(key):
                raise UsageError(
                    f"key {key!r} of {self.kind} {name!r} is not valid: use letters, digits, "
                    f"'-', '_' and '.'"
                )
        data = {} if replace else (self.get(name) or {})
        data.update(values)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)
        return sorted(data)

    def remove(self, name: str) -> bool:
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            return False
        return True


def from_bytes(data: bytes) -> str:
    """A value as stored: UTF-8 text, with bytes that are not UTF-8 kept as surrogates.

    Kubernetes keeps a secret's value as bytes (a keystore, a keytab); ``surrogateescape``
    gives them back unchanged (:func:`to_bytes`), through JSON and through ``os.environ``.
    """
    return data.decode("utf-8", "surrogateescape")


def to_bytes(value: str) -> bytes:
    """The bytes of a stored value (what a task's file or env var holds)."""
    return value.encode("utf-8", "surrogateescape")


def env_problem(kind: str, name: str, key: str, value: str) -> str | None:
    """Why ``value`` cannot be an env var, or None (the problem names the key, never the value).

    An environment string ends at its first NUL byte (execve), so a binary value that
    holds one (a keystore, a keytab) could only reach a task cut short; as a file it is whole.
    """
    if "\x00" not in value:
        return None
    what, call = (
        ("secret", "use_secret_as_volume")
        if kind == "secret"
        else ("config map", "use_config_map_as_volume")
    )
    return (
        f"key {key!r} of {what} {name!r} holds a NUL byte, which an env var cannot hold: "
        f"mount it as a file ({call})"
    )


def digest(value: str) -> str:
    """What a cache key holds in place of a value."""
    return "sha256:" + hashlib.sha256(to_bytes(value)).hexdigest()


#: Shorter values are not masked: they would mask every ``id`` or ``on`` in a log.
MIN_MASKED = 3


def mask_forms(secrets: list[str] | tuple[str, ...]) -> list[str]:
    """What to mask for these secret values, longest first.

    The value itself, and the forms a task most often prints it in, as CI systems mask
    theirs: Python's ``repr`` and JSON's escaping (a value with quotes, newlines or
    non-ASCII text), URL-encoding (in a connection URL), and each line of a value of
    several lines (a key file), which a tool may print on its own.
    """
    out: set[str] = set()
    for v in secrets:
        forms = [
            v,
            repr(v)[1:-1],
            json.dumps(v)[1:-1],
            json.dumps(v, ensure_ascii=False)[1:-1],
            quote(to_bytes(v), safe=""),
            quote_plus(to_bytes(v)),
        ]
        if "\n" in v or "\r" in v:
            forms += [line.strip() for line in v.splitlines()]
        out.update(f for f in forms if len(f) >= MIN_MASKED)
    return sorted(out, key=lambda f: (-len(f), f))


def redact(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """``text`` with every secret value (in any of :func:`mask_forms`) replaced by ``***``."""
    for value in mask_forms(secrets):
        text = text.replace(value, "***")
    return text
