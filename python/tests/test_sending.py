"""``update_subtask_status`` without the stack: what it sends, what it refuses to send, and SQS throttling retried."""

from __future__ import annotations

import json
from typing import Any, Dict

import boto3
import pytest
from botocore.stub import Stubber
from stub_server import Answer, StubServer

from subtask_progress import InvalidSubtaskStatusError, SubtaskProgressClient, create_subtask_status

QUEUE_URL = "http://sqs.us-east-1.localhost:9324/000000000000/subtask-progress-statuses"


def stubbed_client() -> tuple[SubtaskProgressClient, Stubber]:
    sqs = boto3.client("sqs", region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
    return SubtaskProgressClient(sqs_client=sqs, queue_url=QUEUE_URL, env={}), Stubber(sqs)


def test_the_reference_s_arguments_are_the_message() -> None:
    client, stubber = stubbed_client()
    status = create_subtask_status("7f0c-a", succeeded=98, failed=2, skipped=3, retried_withmax=1, state="SUCCESS")
    body = json.dumps({"entry_id": 42, "current_task_id": "7f0c-a", "new_subtask_status": status})
    stubber.add_response("send_message", {"MessageId": "m-1"}, {"QueueUrl": QUEUE_URL, "MessageBody": body})

    with stubber:
        client.update_subtask_status(42, "7f0c-a", status)

    stubber.assert_no_pending_responses()


def valid() -> Dict[str, Any]:
    return create_subtask_status("a", succeeded=1, failed=1, state="PROGRESS")


@pytest.mark.parametrize(
    ("entry_id", "current_task_id", "status", "code"),
    [
        ("job-1", "a", {**valid(), "attempted": 3}, "COUNTS_MISMATCH"),
        ("job-1", "b", valid(), "SUBTASK_ID_MISMATCH"),
        ("job-1", "a", {**valid(), "state": "DONE"}, "UNKNOWN_STATE"),
        ("job-1", "a", {**valid(), "failed": -1, "attempted": 0}, "INVALID_COUNT"),
        ("job-1", "a", {**valid(), "skipped": True}, "INVALID_COUNT"),
        ("job-1", "a", {**valid(), "succeeded": 1.0}, "INVALID_COUNT"),
        ("job-1", "a", {k: v for k, v in valid().items() if k != "retried_nomax"}, "MISSING_FIELD"),
        ("job 1", "a", valid(), "INVALID_ID"),
        ("job-1", "a/b", {**valid(), "task_id": "a/b"}, "INVALID_ID"),
        ("job-1", "a", {**valid(), "detail": "x" * 20_000}, "BODY_TOO_LARGE"),
        ("job-1", "a", {**valid(), "detail": object()}, "INVALID_TYPE"),
        ("job-1", "a", None, "INVALID_TYPE"),
    ],
)
def test_a_status_the_applier_would_refuse_raises_before_anything_is_sent(
    entry_id: Any, current_task_id: str, status: Any, code: str
) -> None:
    client, stubber = stubbed_client()

    with stubber, pytest.raises(InvalidSubtaskStatusError) as raised:
        client.update_subtask_status(entry_id, current_task_id, status)

    assert raised.value.code == code
    assert isinstance(raised.value, ValueError)


def test_throttling_is_retried_with_backoff() -> None:
    throttled = Answer(
        400,
        {"__type": "com.amazonaws.sqs#RequestThrottled", "message": "Request is throttled."},
        {"content-type": "application/x-amz-json-1.0", "x-amzn-query-error": "RequestThrottled;Sender"},
    )
    accepted = Answer(200, {"MessageId": "m-1"}, {"content-type": "application/x-amz-json-1.0"})
    with StubServer([throttled, accepted]) as stub:
        env = {"AWS_ENDPOINT_URL_SQS": f"http://127.0.0.1:{stub.port}", "SUBTASK_PROGRESS_QUEUE_URL": QUEUE_URL}
        session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local")
        client = SubtaskProgressClient(session=session, region="us-east-1", env=env)

        client.update_subtask_status("job-1", "a", valid())

    assert len(stub.requests) == 2
    assert len({json.dumps(body, sort_keys=True) for body in stub.json_bodies()}) == 1
