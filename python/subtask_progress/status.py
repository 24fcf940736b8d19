"""Subtask statuses: the reference's ``create_subtask_status`` / ``increment_subtask_status``, and the checks the
service's applier makes on a status (rule 1), so that a malformed one is refused before it is ever sent."""

from __future__ import annotations

import json
import re
from typing import Any, Dict, Mapping, Optional, Union

from .errors import InvalidSubtaskStatusError

SubtaskStatus = Dict[str, Any]
"""A subtask status as the reference builds it: a plain, JSON-serializable dict."""

QUEUING = "QUEUING"
PROGRESS = "PROGRESS"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"

READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
"""Celery's ready states: a subtask in one of them never changes again."""

SUBTASK_STATES = frozenset({QUEUING, PROGRESS, RETRY, "PENDING", "RECEIVED", "STARTED"}) | READY_STATES

COUNT_FIELDS = ("attempted", "succeeded", "failed", "skipped", "retried_nomax", "retried_withmax")

ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""Task and subtask ids the service takes (they are part of its DynamoDB keys and URLs)."""

MAX_COUNT = 2**31 - 1
"""The applier refuses larger counts: sums over a whole task must stay exact."""

MAX_BODY_BYTES = 16 * 1024
"""A status message is a few hundred bytes; the applier refuses anything larger."""

EntryId = Union[str, int]


def create_subtask_status(
    task_id: str,
    succeeded: int = 0,
    failed: int = 0,
    skipped: int = 0,
    retried_nomax: int = 0,
    retried_withmax: int = 0,
    state: Optional[str] = None,
) -> SubtaskStatus:
    """A fresh status of subtask ``task_id``: ``attempted`` is ``succeeded + failed``, ``state`` defaults to
    ``QUEUING``. The reference's function, field for field and in its key order."""
    return {
        "task_id": task_id,
        "attempted": succeeded + failed,
        "succeeded": succeeded,
        "skipped": skipped,
        "failed": failed,
        "retried_nomax": retried_nomax,
        "retried_withmax": retried_withmax,
        "state": state if state is not None else QUEUING,
    }


def increment_subtask_status(
    subtask_result: Mapping[str, Any],
    succeeded: int = 0,
    failed: int = 0,
    skipped: int = 0,
    retried_nomax: int = 0,
    retried_withmax: int = 0,
    state: Optional[str] = None,
) -> SubtaskStatus:
    """A copy of ``subtask_result`` with the counts added and ``state`` replaced when given (the reference's
    function: counts are cumulative across a subtask's retries; other keys are kept as they are)."""
    new_result = dict(subtask_result)
    new_result["attempted"] += succeeded + failed
    new_result["succeeded"] += succeeded
    new_result["failed"] += failed
    new_result["skipped"] += skipped
    new_result["retried_nomax"] += retried_nomax
    new_result["retried_withmax"] += retried_withmax
    if state is not None:
        new_result["state"] = state
    return new_result


def _check_id(name: str, value: object) -> None:
    if not isinstance(value, str) or ID_PATTERN.fullmatch(value) is None:
        raise InvalidSubtaskStatusError(
            "INVALID_ID", f"{name}: must be 1-128 characters of A-Z a-z 0-9 . _ : -, not {value!r}"
        )


def check_entry_id(entry_id: object) -> str:
    """The task id ``entry_id`` stands for (an integer, as edX's primary keys are, or an id string)."""
    if isinstance(entry_id, int) and not isinstance(entry_id, bool) and entry_id >= 0:
        return str(entry_id)
    _check_id("entry_id", entry_id)
    return str(entry_id)


def status_message_body(entry_id: EntryId, current_task_id: str, new_subtask_status: Mapping[str, Any]) -> str:
    """The SQS body for ``update_subtask_status``'s arguments, after the applier's own checks: raises
    ``InvalidSubtaskStatusError`` (with the code the applier would dead-letter it under) instead of sending a
    message that can never apply."""
    check_entry_id(entry_id)
    _check_id("current_task_id", current_task_id)
    if not isinstance(new_subtask_status, Mapping):
        raise InvalidSubtaskStatusError("INVALID_TYPE", "new_subtask_status: must be a dict")
    for field in ("task_id", *COUNT_FIELDS, "state"):
        if field not in new_subtask_status:
            raise InvalidSubtaskStatusError("MISSING_FIELD", f"new_subtask_status.{field}: missing")
    _check_id("new_subtask_status.task_id", new_subtask_status["task_id"])
    for field in COUNT_FIELDS:
        value = new_subtask_status[field]
        # bool is an int in Python, but `true` is not a count in JSON.
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
            raise InvalidSubtaskStatusError(
                "INVALID_COUNT", f"new_subtask_status.{field}: must be an integer from 0 to {MAX_COUNT}, not {value!r}"
            )
    state = new_subtask_status["state"]
    if state not in SUBTASK_STATES:
        raise InvalidSubtaskStatusError(
            "UNKNOWN_STATE", f"new_subtask_status.state: {state!r} is not one of {', '.join(sorted(SUBTASK_STATES))}"
        )
    if new_subtask_status["task_id"] != current_task_id:
        raise InvalidSubtaskStatusError(
            "SUBTASK_ID_MISMATCH",
            f"new_subtask_status.task_id '{new_subtask_status['task_id']}' is not current_task_id '{current_task_id}'",
        )
    attempted, succeeded, failed = (new_subtask_status[f] for f in ("attempted", "succeeded", "failed"))
    if attempted != succeeded + failed:
        raise InvalidSubtaskStatusError(
            "COUNTS_MISMATCH", f"attempted ({attempted}) must equal succeeded ({succeeded}) + failed ({failed})"
        )
    try:
        body = json.dumps(
            {"entry_id": entry_id, "current_task_id": current_task_id, "new_subtask_status": dict(new_subtask_status)}
        )
    except (TypeError, ValueError) as error:
        raise InvalidSubtaskStatusError(
            "INVALID_TYPE", f"new_subtask_status: not JSON-serializable ({error})"
        ) from error
    size = len(body.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise InvalidSubtaskStatusError(
            "BODY_TOO_LARGE", f"the message is {size} bytes; a status message is at most {MAX_BODY_BYTES}"
        )
    return body
