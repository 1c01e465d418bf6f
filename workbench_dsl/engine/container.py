"""Container components run as host processes: argv, missing programs, output folders.

The image cannot be used here, so its command runs on the host with every
placeholder resolved (``placeholders.py``); the user hears that once per run.
A program the host lacks fails before anything starts, naming the program and
the image that would have had it; a shell script that hits one (exit code 127)
is diagnosed from its log.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

# "sh: 1: gsutil: not found" (dash), "bash: gsutil: command not found", "$0: line 2: ...",
# and for a path: "x: line 1: /opt/tools/prep.sh: No such file or directory" (bash, 127).
_NOT_FOUND = re.compile(
    r"(?m)(?:^|: )([^\s:]+): (?:(?:command )?not found|No such file or directory)\s*$"
)

_BASHISMS = {"[[", "function", "source", "declare", "shopt", "pushd", "popd", "typeset"}


# The shells images ship as `sh`: busybox ash (alpine), bash (debian-based python images
# have dash, but scripts written for images are tested against bash and ash).
_SH = {"sh", "/bin/sh", "/usr/bin/sh", "ash", "/bin/ash", "/usr/bin/ash"}


def host_shell(argv: list[str], path: str | None = None) -> list[str]:
    """``sh``/``ash`` scripts run by the host's bash in POSIX mode (``pipefail``, ``[[``).

    Images' shells (busybox ash, bash) accept ``set -o pipefail`` and ``[[ ]]``; the
    host's ``sh`` may be dash, which does not. bash started as ``bash --posix`` runs
    POSIX scripts with the same exit codes and accepts both. Without bash on the host
    the command is left as it is.
    """
    if not argv or argv[0] not in _SH:
        return argv
    bash = shutil.which("bash", path=path or os.defpath)
    if bash is None:
        return argv
    return [bash, "--posix", *argv[1:]]


def expand_env_refs(text: str, env: dict[str, str]) -> str:
    """``$(VAR)`` in a command or argument, expanded from the container's env as the kubelet does.

    The rules of Kubernetes' ``third_party/forked/golang/expansion``: ``$(NAME)`` of a
    variable the container defines becomes its value, of one it does not stays as it
    is; ``$$`` is a literal ``$``; any other ``$`` is kept. The pod's command holds the
    component's command and args before the launcher fills its placeholders, so this
    runs on them first.
    """
    if "$" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "$" or i + 1 == n:
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(" and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2 : end]
            out.append(env.get(name, f"$({name})"))
            i = end + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


class MissingProgram(Exception):
    """A program the component needs is not installed on this machine."""


def image_notice(image: str) -> str:
    return f"container image {image} is not used locally; its command runs on the host"


def missing_program_message(program: str, image: str) -> str:
    return (
        f"program '{program}' not found on this machine; the component expects image "
        f"{image}: install it here or run the pipeline on a cluster"
    )


def check_program(argv: list[str], env: dict[str, str], image: str) -> None:
    """Fail early and clearly when ``argv[0]`` cannot be run here."""
    program = argv[0]
    if "/" in program:
        found = os.path.isfile(program) and os.access(program, os.X_OK)
    else:
        found = shutil.which(program, path=env.get("PATH", os.defpath)) is not None
    if not found:
        raise MissingProgram(missing_program_message(program, image))


def diagnose_exit(code: int, log_path: Path, image: str) -> str | None:
    """For exit code 127 of a shell, the program it could not find (from the log's tail)."""
    if code != 127:
        return None
    try:
        with open(log_path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    found = _NOT_FOUND.findall(tail)
    if not found:
        return None
    if found[-1] in _BASHISMS:
        return (
            f"the script uses '{found[-1]}', which this machine's sh does not know (the shell "
            f"of image {image} does): write it for POSIX sh, or run it with bash -c"
        )
    return missing_program_message(found[-1], image)


def make_output_dirs(executor_input: dict[str, Any]) -> None:
    """Create the parent folders of every output path, as the cluster launcher does."""
    outputs = executor_input.get("outputs") or {}
    paths = [outputs.get("outputFile")]
    paths += [(p or {}).get("outputFile") for p in (outputs.get("parameters") or {}).values()]
    for listed in (outputs.get("artifacts") or {}).values():
        paths += [a.get("uri") for a in (listed or {}).get("artifacts") or []]
    for path in paths:
        if path and os.path.isabs(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
