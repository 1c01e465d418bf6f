"""Replaying one task of a past run, in the foreground, optionally under the debugger.

See :func:`prepare` (what will run, with which inputs) and :func:`execute` (run it).
"""

from workbench_dsl.replay._plan import ReplayPlan, execute, prepare

__all__ = ["ReplayPlan", "execute", "prepare"]
