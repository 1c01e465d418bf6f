"""Package requirements of a component, layered per attempt without touching the host.

A compiled component installs packages before it runs: ``sh -c '<pip install
...> && "$0" "$@"' <the real command>`` (KFP 2.x lightweight components,
``packages_to_install``, ``pip_index_urls``, ``pip_trusted_hosts``,
``use_venv=True``, and KFP v1's ``(pip install ... || pip install ... --user)``
form). On a cluster that happens in a throwaway container; here it would change
the environment the engine itself runs in (see DESIGN.md, "The host environment
is not the component's to change"). So the prefix is parsed instead of run:

* the ``kfp`` line is always skipped (the engine's kfp runs the component);
* requirements whose environment markers do not apply are skipped;
* requirements the running environment already satisfies are skipped
  (``importlib.metadata`` + ``packaging``);
* the rest are installed once into ``<root>/envs/<hash>/`` with ``pip install
  --target`` (a file lock so concurrent attempts install once, an atomic rename
  when complete) and put at the front of ``sys.path``/``PYTHONPATH`` for the
  attempts that need them.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

_SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/env sh"}
_PIP_INSTALL = re.compile(r"\bpip[\d.]*\s+install\b")
_VALUE_FLAGS = {"--index-url", "-i", "--extra-index-url", "--trusted-host", "--find-links", "-f"}


class RequirementError(Exception):
    """A requirement that cannot be met here; the message is one line for a person."""


@dataclass(frozen=True)
class Requirements:
    """What a component's pip-install prefix asks for (the kfp line already removed)."""

    packages: tuple[str, ...] = ()
    index_urls: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.packages)


def split_install_prefix(elements: list[str]) -> tuple[Requirements, list[str]]:
    """Split ``sh -c '<pip installs> && "$0" "$@"' rest...`` into requirements and ``rest``.

    A command without such a prefix comes back unchanged with no requirements.
    """
    if len(elements) >= 3 and elements[0] in _SHELLS and elements[1] in ("-c", "-ec"):
        script = elements[2]
        if _PIP_INSTALL.search(script) and re.search(r'"\$0"\s+"\$@"\s*$', script.strip()):
            return parse_pip_script(script), list(elements[3:])
    return Requirements(), list(elements)


def parse_pip_script(script: str) -> Requirements:
    """Every ``pip install`` in a shell script, merged into one :class:`Requirements`."""
    packages: list[str] = []
    index: list[str] = []
    extra: list[str] = []
    trusted: list[str] = []
    links: list[str] = []
    for line in script.splitlines():
        if not _PIP_INSTALL.search(line):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        i = 0
        while i < len(tokens):
            if tokens[i] == "install" and i > 0 and re.search(r"pip[\d.]*$", tokens[i - 1]):
                i += 1
                while i < len(tokens) and tokens[i] not in ("&&", "||", ";", "|", "(", ")"):
                    tok = tokens[i]
                    name, _, inline = tok.partition("=") if tok.startswith("--") else (tok, "", "")
                    if name in _VALUE_FLAGS:
                        value = inline or (tokens[i + 1] if i + 1 < len(tokens) else "")
                        i += 0 if inline else 1
                        {
                            "--index-url": index,
                            "-i": index,
                            "--extra-index-url": extra,
                            "--trusted-host": trusted,
                            "--find-links": links,
                            "-f": links,
                        }[name].append(value)
                    elif name in ("-r", "--requirement", "-c", "--constraint", "-e", "--editable"):
                        raise RequirementError(
                            f"'pip install {tok} ...' in the component's command is not supported "
                            "locally: list the packages in packages_to_install"
                        )
                    elif tok.startswith("-"):
                        pass  # --quiet, --no-deps, --user: they do not change what is installed
                    elif tok not in packages and not _is_kfp(tok) and _applies(tok):
                        packages.append(tok)
                    i += 1
            i += 1
    return Requirements(
        packages=tuple(packages),
        index_urls=tuple(dict.fromkeys(index + extra)),
        trusted_hosts=tuple(dict.fromkeys(trusted)),
        find_links=tuple(dict.fromkeys(links)),
    )


def _is_kfp(spec: str) -> bool:
    try:
        return canonicalize_name(Requirement(spec).name) == "kfp"
    except InvalidRequirement:
        # A path, wheel file or VCS URL of the kfp SDK itself.
        base = spec.rstrip("/").rsplit("/", 1)[-1]
        return "kubeflow/pipelines" in spec or re.match(r"kfp[-_]\d", base) is not None


def _applies(spec: str) -> bool:
    try:
        marker = Requirement(spec).marker
    except InvalidRequirement:
        return True
    return marker is None or marker.evaluate()


def unsatisfied(packages: tuple[str, ...]) -> tuple[str, ...]:
    """The requirements the running environment does not already satisfy."""
    return tuple(p for p in packages if not _satisfied(p))


def _satisfied(spec: str, depth: int = 0) -> bool:
    try:
        req = Requirement(spec)
    except InvalidRequirement:
        return False  # a path or URL: only pip can tell
    if req.url:
        return False
    try:
        dist = importlib.metadata.distribution(req.name)
    except importlib.metadata.PackageNotFoundError:
        return False
    if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
        return False
    if req.extras and depth < 2:
        for dep in dist.requires or ():
            try:
                dreq = Requirement(dep)
            except InvalidRequirement:
                continue
            if dreq.marker is None:
                continue
            needed = any(dreq.marker.evaluate({"extra": e}) for e in req.extras)
            if (
                needed
                and not dreq.marker.evaluate({"extra": ""})
                and not _satisfied(str(dreq).split(";")[0], depth + 1)
            ):
                return False
    return True


def layer_key(reqs: Requirements, packages: tuple[str, ...]) -> str:
    """The cache key of a layer: the sorted requirement set, the indexes and the interpreter."""
    ident = {
        "packages": sorted(packages),
        "index_urls": list(reqs.index_urls),
        "trusted_hosts": sorted(reqs.trusted_hosts),
        "find_links": list(reqs.find_links),
        "python": f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}",
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


class LayerCache:
    """Installs requirement layers under ``envs_dir`` once, shared by every attempt."""

    def __init__(self, envs_dir: Path) -> None:
        self.envs_dir = envs_dir
        self._ready: dict[tuple[Requirements, tuple[str, ...]], Path | None] = {}
        self._checked: dict[Requirements, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def missing(self, reqs: Requirements) -> tuple[str, ...]:
        """The part of ``reqs`` the host lacks (memoized: the host never changes under us)."""
        with self._lock:
            found = self._checked.get(reqs)
        if found is None:
            found = unsatisfied(reqs.packages)
            with self._lock:
                self._checked[reqs] = found
        return found

    def ready_path(self, reqs: Requirements, packages: tuple[str, ...]) -> Path | None:
        """The layer's path when it is already installed (no lock, no pip)."""
        key = (reqs, packages)
        path = self._ready.get(key)
        if path is None:
            candidate = self.envs_dir / layer_key(reqs, packages)
            if candidate.is_dir():
                self._ready[key] = path = candidate
        return path

    def ensure(
        self,
        reqs: Requirements,
        packages: tuple[str, ...],
        *,
        log: Callable[[str], None],
        started: Callable[[subprocess.Popen[str]], None],
        cancelled: Callable[[], bool],
    ) -> Path:
        """Install ``packages`` into their layer unless another attempt already did.

        Raises:
            RequirementError: pip could not install them (the message names them
                and carries pip's reason), or the attempt was cancelled.
        """
        path = self.ready_path(reqs, packages)
        if path is not None:
            return path
        key = layer_key(reqs, packages)
        final = self.envs_dir / key
        self.envs_dir.mkdir(parents=True, exist_ok=True)
        with open(self.envs_dir / f"{key}.lock", "w") as lock:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if cancelled():
                        raise RequirementError(
                            "cancelled while waiting for a package install"
                        ) from None
                    time.sleep(0.05)
            if final.is_dir():
                self._ready[(reqs, packages)] = final
                return final
            log(f"[workbench] installing {' '.join(packages)} into {final}")
            tmp = Path(tempfile.mkdtemp(prefix=f"{key}.tmp-", dir=self.envs_dir))
            try:
                self._pip_install(reqs, packages, tmp, log=log, started=started)
                (tmp / ".workbench-layer.json").write_text(
                    json.dumps({"packages": list(packages), "index_urls": list(reqs.index_urls)}),
                    encoding="utf-8",
                )
                os.rename(tmp, final)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        self._ready[(reqs, packages)] = final
        return final

    def _pip_install(
        self,
        reqs: Requirements,
        packages: tuple[str, ...],
        target: Path,
        *,
        log: Callable[[str], None],
        started: Callable[[subprocess.Popen[str]], None],
    ) -> None:
        cmd = [sys.executable, "-m", "pip", "install", "--target", str(target)]
        cmd += ["--no-input", "--disable-pip-version-check", "--no-warn-script-location"]
        if reqs.index_urls:
            cmd += ["--index-url", reqs.index_urls[0]]
            for url in reqs.index_urls[1:]:
                cmd += ["--extra-index-url", url]
        for host in reqs.trusted_hosts:
            cmd += ["--trusted-host", host]
        for link in reqs.find_links:
            cmd += ["--find-links", link]
        cmd += list(packages)
        # The user's index, proxy and certificate settings apply; where to install does not.
        clash = {"PIP_TARGET", "PIP_USER", "PIP_PREFIX", "PIP_ROOT", "PIP_REQUIRE_VIRTUALENV"}
        env = {k: v for k, v in os.environ.items() if k not in clash}
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,
        )
        started(proc)
        output, _ = proc.communicate()
        log(output.rstrip())
        if proc.returncode != 0:
            reason = _pip_reason(output) or f"pip exited with code {proc.returncode}"
            raise RequirementError(f"cannot install {', '.join(packages)}: {reason}")


def _pip_reason(output: str) -> str | None:
    for line in output.splitlines():
        if line.startswith("ERROR: "):
            return line[len("ERROR: ") :].strip()[:300]
    return None


def python_path(layers: list[str], current: str | None) -> str:
    """``PYTHONPATH`` with ``layers`` in front, so subprocesses of a task see them too."""
    return os.pathsep.join([*layers, *([current] if current else [])])
