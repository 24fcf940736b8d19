"""The API side of the client against stub servers on 127.0.0.1: the initialize loop on 202, retries of what is
worth retrying, and SigV4 exactly when the TypeScript client signs (and never over plain http)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from botocore.credentials import Credentials
from stub_server import Answer, StubServer, self_signed_certificate

from subtask_progress import (
    ApiError,
    CancelConflictError,
    ConfigurationError,
    InitializeConflictError,
    SubtaskProgressClient,
)
from subtask_progress.signing import is_loopback, signature_headers

CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
API_HOST = "api.subtask-progress.test"


def progress(ready: bool = True) -> Dict[str, Any]:
    """A task progress as the API answers it."""
    return {
        "task_id": "job-1",
        "task_state": "PROGRESS",
        "in_progress": True,
        "task_progress": {"action_name": "emailed", "attempted": 0, "succeeded": 0, "failed": 0, "skipped": 0,
                          "total": 200, "duration_ms": 0, "start_time": 1767225600.25},
        "subtasks": {"total": 2, "succeeded": 0, "failed": 0, "remaining": 2},
        "cancel_requested": False,
        "ready": ready,
    }


def local_client(stub: StubServer, pauses: Optional[List[float]] = None) -> SubtaskProgressClient:
    """A client of the stub as the local stack's API (loopback, unsigned); its pauses go to ``pauses``."""
    sleep = (pauses if pauses is not None else []).append
    return SubtaskProgressClient(api_url=f"http://127.0.0.1:{stub.port}", env={}, sleep=sleep)


def test_initialize_repeats_the_same_put_while_the_api_answers_202() -> None:
    answers = [Answer(202, progress(False), {"retry-after": "1"})] * 2 + [Answer(201, progress())]
    with StubServer(answers) as stub:
        pauses: List[float] = []
        task = local_client(stub, pauses).initialize_task(
            "job-1", "emailed", 200, ["a", "b"], tolerated_failure_percentage=2.5
        )

    assert (task.created, task.requests) == (True, 3)
    assert [(r.method, r.path) for r in stub.requests] == [("PUT", "/tasks/job-1")] * 3
    assert stub.json_bodies() == [
        {"action_name": "emailed", "total": 200, "subtask_ids": ["a", "b"], "tolerated_failure_percentage": 2.5}
    ] * 3
    assert pauses == [1.0, 1.0]
    assert task.progress["task_progress"] == progress()["task_progress"]


def test_initialize_subtask_info_returns_task_progress_and_sends_options_as_the_api_names_them() -> None:
    import datetime

    deadline = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    with StubServer([Answer(200, progress())]) as stub:
        result = local_client(stub).initialize_subtask_info(
            42, "emailed", 200, None, subtask_count=2, prefix="batch", deadline=deadline, group="course-v1:edX+X+1"
        )

    assert result == progress()["task_progress"]
    assert stub.requests[0].path == "/tasks/42"
    assert stub.json_bodies()[0] == {
        "action_name": "emailed", "total": 200, "subtask_count": 2, "prefix": "batch",
        "deadline": "2030-01-01T00:00:00+00:00", "group": "course-v1:edX+X+1",
    }


def test_a_task_id_is_percent_encoded_in_the_path() -> None:
    with StubServer([Answer(200, progress())]) as stub:
        local_client(stub).get_task_progress("course:42")

    assert stub.requests[0].path == "/tasks/course%3A42"


def test_idempotent_requests_are_retried_on_5xx_and_429_then_the_answer_is_returned() -> None:
    answers = [Answer(503, {"message": "Service Unavailable"}), Answer(429, {"message": "Too Many Requests"},
               {"retry-after": "2"}), Answer(200, progress())]
    with StubServer(answers) as stub:
        pauses: List[float] = []
        assert local_client(stub, pauses).get_task_progress("job-1")["task_id"] == "job-1"

    assert len(stub.requests) == 3
    assert pauses == [0.25, 2.0]


def test_a_cancel_is_sent_once_and_its_409_raises() -> None:
    answer = Answer(409, {"error": "Conflict", "message": "Task 'job-1' already ended SUCCESS"})
    with StubServer([answer]) as stub:
        with pytest.raises(CancelConflictError, match="already ended SUCCESS"):
            local_client(stub).cancel_task("job-1")

    assert [(r.method, r.path) for r in stub.requests] == [("POST", "/tasks/job-1/cancel")]


def test_a_409_names_the_fields_from_the_api_s_message() -> None:
    message = "Task 'job-1' is already initialized with a different total, subtask_ids"
    with StubServer([Answer(409, {"error": "Conflict", "message": message})]) as stub:
        with pytest.raises(InitializeConflictError) as raised:
            local_client(stub).initialize_subtask_info("job-1", "emailed", 201, ["a", "c"])

    assert raised.value.fields == ("total", "subtask_ids")
    assert raised.value.message == message


def test_an_answer_without_the_api_s_body_is_an_api_error_with_its_status() -> None:
    with StubServer([Answer(403, None)]) as stub:
        with pytest.raises(ApiError) as raised:
            local_client(stub).get_task_progress("job-1")

    assert raised.value.status == 403


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:3000", True),
        ("http://localhost:3000/prod", True),
        ("http://api.localhost", True),
        ("http://[::1]:3000", True),
        ("https://abc123.execute-api.eu-west-1.amazonaws.com/prod", False),
        ("http://127.1:3000", False),
        ("http://vm:3000", False),
        (f"https://{API_HOST}", False),
    ],
)
def test_only_literal_loopback_urls_go_unsigned(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback


def test_a_loopback_request_carries_no_signature() -> None:
    with StubServer([Answer(200, progress())]) as stub:
        local_client(stub).get_task_progress("job-1")

    assert "authorization" not in stub.requests[0].headers


@pytest.fixture()
def api_host_on_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``API_HOST`` resolves to 127.0.0.1, as a name in /etc/hosts would: not literally loopback, so signed."""
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return resolve("127.0.0.1" if host == API_HOST else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield


def test_a_signed_request_is_refused_over_plain_http_before_anything_is_sent(api_host_on_loopback: None) -> None:
    with StubServer([Answer(200, progress())]) as stub:
        client = SubtaskProgressClient(
            api_url=f"http://{API_HOST}:{stub.port}", region="eu-west-1", env={}, session=_session()
        )
        with pytest.raises(ConfigurationError, match="Refusing to send a signed request over plain http"):
            client.initialize_subtask_info("job-1", "emailed", 200, ["a", "b"])

    assert stub.requests == []


def test_a_request_to_a_name_that_is_not_loopback_is_signed_for_execute_api(
    api_host_on_loopback: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate = self_signed_certificate(tmp_path, API_HOST)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with StubServer([Answer(201, progress())], tls=certificate) as stub:
        client = SubtaskProgressClient(
            api_url=f"https://{API_HOST}:{stub.port}/prod", region="eu-west-1", env={}, session=_session()
        )
        client.initialize_subtask_info("job-1", "emailed", 200, ["a", "b"])

    [request] = stub.requests
    authorization = request.headers["authorization"]
    assert request.path == "/prod/tasks/job-1"
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={CREDENTIALS.access_key}/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert "SignedHeaders=accept;content-type;host;x-amz-date," in authorization
    assert request.headers["x-amz-date"]


def test_signature_headers_carry_the_session_token_and_differ_with_the_body() -> None:
    temporary = Credentials("ASIAEXAMPLE", "secret", "the-session-token")
    url = f"https://{API_HOST}/tasks/job-1"

    one = signature_headers("PUT", url, "eu-west-1", temporary, b'{"total": 1}', {"content-type": "application/json"})
    other = signature_headers("PUT", url, "eu-west-1", temporary, b'{"total": 2}', {"content-type": "application/json"})

    assert one["X-Amz-Security-Token"] == "the-session-token"
    assert one["Authorization"] != other["Authorization"]
    with pytest.raises(ConfigurationError):
        signature_headers("GET", f"http://{API_HOST}/tasks/job-1", "eu-west-1", temporary)


def _session() -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=CREDENTIALS.access_key, aws_secret_access_key=CREDENTIALS.secret_key, region_name="eu-west-1"
    )
