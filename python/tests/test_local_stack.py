"""The module against the local stack, as a worker and a producer use it: the drop-in functions configured by the
environment alone (the local stack's export line)."""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from typing import Any, Callable, Dict, List, Mapping, TypeVar

import boto3
import pytest

from subtask_progress import (
    ApiError,
    InitializeConflictError,
    InvalidInitializeRequestError,
    SubtaskStatus,
)
from subtask_progress.subtasks import (
    cancel_task,
    create_subtask_status,
    get_task_progress,
    increment_subtask_status,
    initialize_subtask_info,
    update_subtask_status,
)

pytestmark = pytest.mark.usefixtures("stack_env", "fresh_default_client")

T = TypeVar("T")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def eventually(probe: Callable[[], T], done: Callable[[T], bool], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s; last value: {value!r}")
        time.sleep(0.1)


def worker_statuses(rng: random.Random, subtask_id: str, final_state: str) -> List[SubtaskStatus]:
    """Every status a Celery subtask sends on its way: cumulative, with retries, ending in ``final_state``."""
    status = create_subtask_status(subtask_id, state="PROGRESS")
    sent = [status]
    for _ in range(rng.randint(1, 4)):
        retried = rng.choice([{}, {"retried_withmax": 1}, {"retried_nomax": 1}])
        status = increment_subtask_status(
            status,
            succeeded=rng.randint(0, 30),
            failed=rng.randint(0, 3),
            skipped=rng.randint(0, 2),
            state="RETRY" if retried else "PROGRESS",
            **retried,
        )
        sent.append(status)
    sent.append(increment_subtask_status(status, succeeded=rng.randint(1, 30), state=final_state))
    return sent


def test_shuffled_and_redelivered_statuses_give_exact_progress() -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    task_id = unique("py-exact")
    subtask_ids = [f"sub-{n}" for n in range(6)]
    finals = {subtask_id: "SUCCESS" for subtask_id in subtask_ids} | {"sub-5": "FAILURE"}
    initialize_subtask_info(task_id, "emailed", 600, subtask_ids)
    histories = {subtask_id: worker_statuses(rng, subtask_id, finals[subtask_id]) for subtask_id in subtask_ids}
    deliveries = [status for history in histories.values() for status in history]
    # SQS delivers at least once, in any order.
    deliveries += rng.sample(deliveries, len(deliveries) // 3)
    rng.shuffle(deliveries)

    for status in deliveries:
        update_subtask_status(task_id, status["task_id"], status)
    progress = eventually(lambda: get_task_progress(task_id), lambda p: p["task_state"] != "PROGRESS")

    last = [history[-1] for history in histories.values()]
    expected = {name: sum(status[name] for status in last) for name in ("attempted", "succeeded", "failed", "skipped")}
    context = f"seed {seed}: {json.dumps(progress)}"
    assert {name: progress["task_progress"][name] for name in expected} == expected, context
    assert progress["subtasks"] == {"total": 6, "succeeded": 5, "failed": 1, "remaining": 0}, context
    assert progress["task_state"] == "SUCCESS", context


def test_the_same_initialization_again_returns_the_task() -> None:
    task_id = unique("py-again")
    first = initialize_subtask_info(task_id, "emailed", 200, ["a", "b"], tolerated_failure_percentage=2.5)

    again = initialize_subtask_info(task_id, "emailed", 200, ["b", "a"], tolerated_failure_percentage=2.5)

    assert again == first


def test_another_initialization_under_the_same_id_raises_naming_the_fields() -> None:
    task_id = unique("py-conflict")
    initialize_subtask_info(task_id, "emailed", 200, ["a", "b"])

    with pytest.raises(InitializeConflictError) as raised:
        initialize_subtask_info(task_id, "emailed", 201, ["a", "b"])

    assert raised.value.status == 409
    assert raised.value.fields == ("total",)
    assert "total" in str(raised.value)
    assert get_task_progress(task_id)["task_progress"]["total"] == 200


@pytest.mark.parametrize(
    ("subtask_ids", "options", "said"),
    [
        (["a", "a"], {}, "unique"),
        (["a"], {"tolerated_failure_percentage": 200}, "tolerated_failure_percentage"),
        (["a"], {"no_such_option": 1}, "no_such_option"),
    ],
)
def test_a_malformed_initialization_raises_with_the_api_s_message(
    subtask_ids: List[str], options: Mapping[str, Any], said: str
) -> None:
    task_id = unique("py-invalid")
    with pytest.raises(InvalidInitializeRequestError) as raised:
        initialize_subtask_info(task_id, "emailed", 100, subtask_ids, **options)

    assert raised.value.status == 400
    assert said in raised.value.message
    with pytest.raises(ApiError) as missing:
        get_task_progress(task_id)
    assert missing.value.status == 404


def dead_letters(sqs: Any, queue_url: str) -> List[Dict[str, Any]]:
    answer = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
    )
    messages: List[Dict[str, Any]] = answer.get("Messages", [])
    return messages


def test_a_status_for_an_unknown_subtask_ends_in_the_dead_letter_queue() -> None:
    task_id = unique("py-dlq")
    initialize_subtask_info(task_id, "emailed", 100, ["a"])
    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"])
    queue_url = os.environ["SUBTASK_PROGRESS_DEAD_LETTER_QUEUE_URL"]

    stray = create_subtask_status("not-a-subtask", succeeded=1, state="SUCCESS")

    update_subtask_status(task_id, "not-a-subtask", stray)

    seen: List[Dict[str, Any]] = []

    def ours() -> List[Dict[str, Any]]:
        seen.extend(dead_letters(sqs, queue_url))
        return [m for m in seen if json.loads(m["Body"])["entry_id"] == task_id]

    [letter] = eventually(ours, lambda found: len(found) > 0, timeout=20)
    assert json.loads(letter["Body"])["current_task_id"] == "not-a-subtask"
    assert letter["MessageAttributes"]["error_code"]["StringValue"] == "UNKNOWN_SUBTASK"
    assert get_task_progress(task_id)["task_progress"]["attempted"] == 0


def test_cancel_shows_cancel_requested_and_unknown_tasks_are_404() -> None:
    task_id = unique("py-cancel")
    initialize_subtask_info(task_id, "emailed", 100, ["a", "b"])

    canceled = cancel_task(task_id)

    assert canceled["cancel_requested"] is True
    assert get_task_progress(task_id)["cancel_requested"] is True
    with pytest.raises(ApiError) as raised:
        get_task_progress(unique("py-missing"))
    assert raised.value.status == 404
