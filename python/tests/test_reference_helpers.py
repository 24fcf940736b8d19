"""The status helpers equal the reference's own code, field for field and in key order, on generated inputs; and
``initialize_subtask_info`` returns the reference's ``task_progress`` fields."""

from __future__ import annotations

import json
import random
from typing import Any, Dict

import pytest
from reference import reference_helpers, reference_task_progress

from subtask_progress import SUBTASK_STATES, create_subtask_status, increment_subtask_status

RUNS = 500
STATES = sorted(SUBTASK_STATES)
COUNTS = ("succeeded", "failed", "skipped", "retried_nomax", "retried_withmax")


@pytest.fixture(scope="module")
def reference() -> Dict[str, Any]:
    return reference_helpers()


def counts(rng: random.Random) -> Dict[str, Any]:
    """Some of the keyword arguments, as a caller passes them: counts of any size, and a state or none."""
    chosen = {
        name: rng.choice([0, 1, rng.randint(0, 100), rng.randint(0, 2**31)])
        for name in COUNTS
        if rng.random() < 0.7
    }
    if rng.random() < 0.6:
        chosen["state"] = rng.choice(STATES)
    return chosen


def same(ours: Dict[str, Any], theirs: Dict[str, Any]) -> None:
    # Key order too: the JSON a worker sends is the same bytes.
    assert json.dumps(ours) == json.dumps(theirs)


def test_create_subtask_status_is_the_reference_s(reference: Dict[str, Any]) -> None:
    rng = random.Random(20)
    for _ in range(RUNS):
        task_id = rng.choice(["sub-0", "7f0c-a", "x" * 128, str(rng.random())])
        kwargs = counts(rng)
        same(create_subtask_status(task_id, **kwargs), reference["create_subtask_status"](task_id, **kwargs))
        positional = [kwargs.get(name, 0) for name in COUNTS]
        same(create_subtask_status(task_id, *positional), reference["create_subtask_status"](task_id, *positional))


def test_increment_subtask_status_is_the_reference_s_along_a_subtask_s_retries(reference: Dict[str, Any]) -> None:
    rng = random.Random(21)
    for _ in range(RUNS // 5):
        ours = theirs = reference["create_subtask_status"](f"sub-{rng.randint(0, 99)}", **counts(rng))
        if rng.random() < 0.3:
            # Keys the reference does not know are carried over as they are (it copies the dict).
            ours = theirs = {**ours, "error": "bounced"}
        for _ in range(rng.randint(1, 8)):
            kwargs = counts(rng)
            ours = increment_subtask_status(ours, **kwargs)
            theirs = reference["increment_subtask_status"](theirs, **kwargs)
            same(ours, theirs)


def test_increment_leaves_its_argument_unchanged(reference: Dict[str, Any]) -> None:
    status = create_subtask_status("a", succeeded=1)
    kept = dict(status)

    increment_subtask_status(status, succeeded=5, state="SUCCESS")

    assert status == kept
    assert reference["increment_subtask_status"](kept, succeeded=5, state="SUCCESS") == increment_subtask_status(
        kept, succeeded=5, state="SUCCESS"
    )


@pytest.mark.usefixtures("stack_env", "fresh_default_client")
def test_the_reference_s_task_progress_has_the_fields_the_api_returns() -> None:
    from subtask_progress.subtasks import initialize_subtask_info

    task_id = f"py-ref-{random.randrange(10**9)}"
    ours = initialize_subtask_info(task_id, "emailed", 300, ["a", "b", "c"])
    theirs = reference_task_progress("emailed", 300, ours["start_time"])

    assert ours == theirs
    assert isinstance(ours["start_time"], (int, float)) and ours["start_time"] > 1.6e9
