"""Local volumes: the stand-ins for PersistentVolumeClaims.

A claim named ``NAME`` is the folder ``<root>/volumes/NAME`` (owner-only). A
kfp-kubernetes ``CreatePVC`` step makes it (its output ``name`` is the claim's
name, as on a cluster), ``DeletePVC`` removes it, and a task that mounts it
sees it at its mount path (``mounts.py``). A claim the pipeline names but no
step creates (a claim that exists on the cluster) is a persistent local volume:
made on first use, kept until ``workbench volumes rm NAME``.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from workbench_dsl.errors import UsageError

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def volume_dir(root: Path, name: str, *, create: bool = False) -> Path:
    if not _NAME.match(name):
        raise UsageError(
            f"volume name {name!r} is not a valid Kubernetes name: use lower-case letters, "
            f"digits, '-' and '.'"
        )
    folder = Path(root) / "volumes" / name
    if create:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def list_volumes(root: Path) -> list[dict[str, Any]]:
    base = Path(root) / "volumes"
    if not base.is_dir():
        return []
    out = []
    for d in sorted(p for p in base.iterdir() if p.is_dir()):
        size = files = 0
        for dirpath, _, names in os.walk(d):
            for n in names:
                try:
                    size += os.lstat(os.path.join(dirpath, n)).st_size
                    files += 1
                except OSError:
                    pass
        out.append(
            {
                "name": d.name,
                "path": str(d),
                "files": files,
                "size": size,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(d.stat().st_mtime)),
            }
        )
    return out


def remove_volume(root: Path, name: str) -> bool:
    from workbench_dsl.engine.cas import remove

    folder = volume_dir(root, name)
    if not folder.exists():
        return False
    remove(folder)
    return True
