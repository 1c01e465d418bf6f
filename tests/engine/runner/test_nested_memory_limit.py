"""A run started inside another run's task keeps the memory limit it inherited.

The outer task's ``RLIMIT_AS`` is inherited by everything it starts, including a
nested engine and its worker; a hard limit cannot be raised without privileges,
so the nested attempt must take the smaller of the two instead of failing.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import encodings.ascii  # read below, after the privileges are gone
    import os
    import resource
    from workbench_dsl.engine.resources import confine

    outer = 1 << 30
    resource.setrlimit(resource.RLIMIT_AS, (outer, outer))
    if os.getuid() == 0:  # root may raise a hard limit; a task in a user namespace may not
        os.setgid(65534)
        os.setuid(65534)
    confine(None, 2 << 30, "rlimit", True)  # base (the interpreter) + 2 GiB > 1 GiB
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    assert soft == hard <= outer, (soft, hard, outer)
    confine(None, 64 << 20, "rlimit", False)  # a smaller limit still applies
    assert resource.getrlimit(resource.RLIMIT_AS) == (64 << 20, 64 << 20)
    print("ok")
    """
)


def test_an_inherited_hard_limit_stays_in_force_and_is_not_an_error() -> None:
    # The child lowers its own hard limit first, as an outer task's would be.
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
