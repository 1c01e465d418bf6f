"""The task state machine's table: what the orchestrator may do to a task, and what the store shows."""

from __future__ import annotations

import pytest

from workbench_dsl.engine.orchestrator.states import (
    ALLOWED,
    TERMINAL,
    IllegalTransition,
    TaskState,
    check,
)

S = TaskState


def test_every_state_that_is_not_final_can_fail_and_final_states_are_final() -> None:
    for state in TaskState:
        if state in TERMINAL:
            assert state not in ALLOWED
            with pytest.raises(IllegalTransition, match="not a legal transition"):
                check("t", state, S.RUNNING)
        else:
            check("t", state, S.FAILED)


def test_the_store_keeps_kfp_words_for_the_finer_states() -> None:
    assert S.CACHED.stored == S.SUCCEEDED.stored == "SUCCEEDED"
    assert S.READY.stored == S.VERIFYING.stored == "PENDING"
    assert S.WAITING_FOR_APPROVAL.stored == S.WAITING_TO_RETRY.stored == "RUNNING"
    assert S.STORING_OUTPUTS.stored == "RUNNING"


def test_a_task_cannot_skip_its_attempt() -> None:
    with pytest.raises(IllegalTransition, match="pending -> storing_outputs"):
        check("train", S.PENDING, S.STORING_OUTPUTS)
    check("train", S.RUNNING, S.WAITING_FOR_APPROVAL)
    check("train", S.WAITING_FOR_APPROVAL, S.RUNNING)
    check("train", S.WAITING_TO_RETRY, S.READY)
