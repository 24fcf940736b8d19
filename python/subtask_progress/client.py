"""``SubtaskProgressClient``: a worker's and a producer's view of the service, holding a boto3 session and the
service's settings. Statuses go to the SQS queue; initialize, progress and cancel go to the HTTP API, SigV4-signed
unless it is the local stack on loopback."""

from __future__ import annotations

import datetime
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Sequence
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.credentials import Credentials

from . import settings
from .errors import (
    ApiError,
    ApiUnreachableError,
    CancelConflictError,
    ConfigurationError,
    InitializeConflictError,
    InvalidInitializeRequestError,
    SubtaskProgressError,
    UnexpectedResponseError,
)
from .signing import is_loopback, signature_headers
from .status import EntryId, SubtaskStatus, status_message_body
from .transport import ApiResponse, urllib_transport

LOG = logging.getLogger(__name__)

TaskProgress = Dict[str, Any]
"""The body of ``GET /tasks/{task_id}``: ``task_state``, ``task_progress``, ``in_flight``, ``message``, …"""

RETRY_BASE_SECONDS = 0.25
# A `Retry-After` past this is not worth waiting out inside one call: the caller can run it again.
MAX_RETRY_AFTER_SECONDS = 30.0


@dataclass(frozen=True)
class InitializedTask:
    """What an initialization came to."""

    created: bool
    """True when this call created the task (or carried on an unfinished initialization of the same request)."""
    requests: int
    """PUT requests made, ``202`` answers included (retries of a failed request not counted)."""
    progress: TaskProgress
    """The task as the last answer showed it."""


def _retry_after(response: ApiResponse, fallback: float) -> float:
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return fallback
    return min(seconds, MAX_RETRY_AFTER_SECONDS) if seconds >= 0 else fallback


def _error_body(response: ApiResponse) -> Dict[str, Any]:
    """The API's ``{error, message}`` (API Gateway's own refusals carry only ``message``)."""
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return {"error": f"HTTP{response.status}", "message": f"HTTP {response.status}"}
    return {**body, "error": str(body.get("error") or f"HTTP{response.status}")}


def _conflicting_fields(body: Mapping[str, Any]) -> Sequence[str]:
    """The fields a ``409`` names: its ``fields``, or read back from its message ("… with a different a, b")."""
    fields = body.get("fields")
    if isinstance(fields, list):
        return [str(name) for name in fields]
    message = str(body["message"])
    marker = "with a different "
    return message[message.index(marker) + len(marker) :].split(", ") if marker in message else []


def _option_value(name: str, value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name} must be a timezone-aware datetime, e.g. datetime.now(timezone.utc)")
        return value.isoformat()
    return value


class SubtaskProgressClient:
    """The service, configured once. Every argument is optional: by default the settings come from the environment
    (``SUBTASK_PROGRESS_QUEUE_URL``, ``SUBTASK_PROGRESS_API_URL``, ``AWS_ENDPOINT_URL_SQS``, the region from the
    session, ``AWS_DEFAULT_REGION`` or ``AWS_REGION``) and credentials from boto3's chain. Safe to share between
    threads; in a forking worker (Celery's prefork pool) build it, or let the module build it, after the fork."""

    def __init__(
        self,
        *,
        session: Optional[boto3.session.Session] = None,
        api_url: Optional[str] = None,
        queue_url: Optional[str] = None,
        region: Optional[str] = None,
        sqs_client: Any = None,
        env: Optional[Mapping[str, str]] = None,
        timeout: float = 30.0,
        http_attempts: int = 4,
        send_attempts: int = 8,
        max_initialize_requests: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``sqs_client`` replaces the one built from ``session`` (its own retry settings then apply);
        ``send_attempts`` is botocore's ``max_attempts`` for the one built here (standard retry mode: throttling,
        5xx and connection errors, with exponential backoff and jitter); ``http_attempts`` is how often an
        idempotent API request is made while the API is unreachable or answers 429 or 5xx."""
        self._session = session
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._api_url = api_url
        self._queue_url = queue_url
        self._region = region
        self._sqs_client = sqs_client
        self._timeout = timeout
        self._http_attempts = http_attempts
        self._send_attempts = send_attempts
        self._max_initialize_requests = max_initialize_requests
        self._sleep = sleep
        self._lock = threading.Lock()

    # -- workers ------------------------------------------------------------------------------------------------

    def update_subtask_status(self, entry_id: EntryId, current_task_id: str, new_subtask_status: SubtaskStatus) -> None:
        """Queues the cumulative status of subtask ``current_task_id`` of task ``entry_id`` for the applier (the
        reference's arguments are the message). Raises ``InvalidSubtaskStatusError`` before sending a status the
        applier would refuse; throttling and transient SQS errors are retried with backoff, and what still fails
        raises botocore's error (a Celery task can retry on it)."""
        body = status_message_body(entry_id, current_task_id, new_subtask_status)
        LOG.debug("Sending status of subtask %s of task %s: %s", current_task_id, entry_id, body)
        self._sqs().send_message(QueueUrl=settings.queue_url(self._queue_url, self._env), MessageBody=body)

    # -- producers and readers ----------------------------------------------------------------------------------

    def initialize_task(
        self,
        entry_id: EntryId,
        action_name: str,
        total_num: int,
        subtask_id_list: Optional[Sequence[str]],
        **options: Any,
    ) -> InitializedTask:
        """Creates task ``entry_id`` with every subtask ``QUEUING`` (``PUT /tasks/{task_id}``), repeating the PUT
        while the API answers ``202`` (a fan-out too large for one request). ``options`` are the API's body fields
        (``tolerated_failure_percentage``, ``subtask_timeout_seconds``, ``deadline`` (a timezone-aware datetime or
        ISO 8601 text), ``ttl_days``, ``group``, or ``subtask_count`` and ``prefix`` with ``subtask_id_list=None``).
        The same call again changes nothing; another request under the same id raises
        ``InitializeConflictError`` naming the fields, a malformed one ``InvalidInitializeRequestError``."""
        body: Dict[str, Any] = {"action_name": action_name, "total": total_num}
        if subtask_id_list is not None:
            body["subtask_ids"] = list(subtask_id_list)
        body.update({name: _option_value(name, value) for name, value in options.items()})
        path = self._task_path(entry_id)
        created: Optional[bool] = None
        for requests in range(1, self._max_initialize_requests + 1):
            response = self._send("PUT", path, body, idempotent=True)
            if response.status in (200, 201):
                return InitializedTask(
                    created=created if created is not None else response.status == 201,
                    requests=requests,
                    progress=self._progress(response),
                )
            if response.status == 202:
                created = True if created is None else created
                # The API asks for a pause between pages; it also lets a concurrent resumer finish its page.
                self._sleep(_retry_after(response, 0.0))
                continue
            error = _error_body(response)
            if response.status == 400:
                raise InvalidInitializeRequestError(400, error["error"], error["message"])
            if response.status == 409:
                raise InitializeConflictError(409, error["error"], error["message"], _conflicting_fields(error))
            raise ApiError(response.status, error["error"], error["message"])
        raise SubtaskProgressError(
            f"Task '{entry_id}' is still being initialized after {self._max_initialize_requests} requests; "
            "run the same initialization again to carry on"
        )

    def initialize_subtask_info(
        self,
        entry_id: EntryId,
        action_name: str,
        total_num: int,
        subtask_id_list: Optional[Sequence[str]],
        **options: Any,
    ) -> Dict[str, Any]:
        """``initialize_task``, returning the reference's ``task_progress`` dict (``action_name``, ``attempted``,
        ``failed``, ``skipped``, ``succeeded``, ``total``, ``duration_ms``, ``start_time``)."""
        task_progress = self.initialize_task(entry_id, action_name, total_num, subtask_id_list, **options).progress[
            "task_progress"
        ]
        return dict(task_progress)

    def get_task_progress(self, entry_id: EntryId) -> TaskProgress:
        """The task's progress, the body of ``GET /tasks/{task_id}``; ``ApiError`` (status 404) for no such task."""
        response = self._send("GET", self._task_path(entry_id), None, idempotent=True)
        if response.status != 200:
            error = _error_body(response)
            raise ApiError(response.status, error["error"], error["message"])
        return self._progress(response)

    def cancel_task(self, entry_id: EntryId) -> TaskProgress:
        """Cancels the task (``POST /tasks/{task_id}/cancel``): the answer already shows ``cancel_requested``, and
        the sweeper revokes every subtask not yet ended. ``CancelConflictError`` when it has ended or is still being
        initialized, ``ApiError`` (404) when it does not exist."""
        response = self._send("POST", self._task_path(entry_id, "/cancel"), None, idempotent=False)
        if response.status == 202:
            return self._progress(response)
        error = _error_body(response)
        if response.status == 409:
            raise CancelConflictError(409, error["error"], error["message"])
        raise ApiError(response.status, error["error"], error["message"])

    # -- plumbing -----------------------------------------------------------------------------------------------

    def _boto_session(self) -> boto3.session.Session:
        with self._lock:
            if self._session is None:
                self._session = boto3.session.Session()
            return self._session

    def _region_name(self) -> str:
        return settings.region(self._region, self._boto_session().region_name, self._env)

    def _sqs(self) -> Any:
        if self._sqs_client is not None:
            return self._sqs_client
        region = self._region_name()
        session = self._boto_session()
        # Under the lock: a boto3 session is not safe to build clients from in several threads at once.
        with self._lock:
            if self._sqs_client is None:
                self._sqs_client = session.client(
                    "sqs",
                    region_name=region,
                    endpoint_url=settings.sqs_endpoint(self._env),
                    config=Config(retries={"mode": "standard", "max_attempts": self._send_attempts}),
                )
            return self._sqs_client

    def _credentials(self) -> Credentials:
        credentials = self._boto_session().get_credentials()
        if credentials is None:
            raise ConfigurationError(
                "No AWS credentials to sign the API request with (boto3's credential chain found none)"
            )
        return credentials

    @staticmethod
    def _task_path(entry_id: EntryId, suffix: str = "") -> str:
        # Percent-encoded here, so the signed path and the sent path are the same bytes.
        return f"/tasks/{quote(str(entry_id), safe='')}{suffix}"

    def _send(self, method: str, path: str, body: Optional[Mapping[str, Any]], *, idempotent: bool) -> ApiResponse:
        """One request; an idempotent one again, with backoff, while the API is unreachable or answers 429/5xx."""
        url = settings.api_url(self._api_url, self._env) + path
        data = None if body is None else json.dumps(body).encode("utf-8")
        attempts = self._http_attempts if idempotent else 1
        attempt = 0
        while True:
            attempt += 1
            backoff = RETRY_BASE_SECONDS * 2 ** (attempt - 1)
            headers = {"accept": "application/json"}
            if data is not None:
                # Signed too, so that nobody on the way can change how the body is read.
                headers["content-type"] = "application/json"
            if not is_loopback(url):
                # Signed at every attempt: a signature is dated.
                headers.update(signature_headers(method, url, self._region_name(), self._credentials(), data, headers))
            try:
                response = urllib_transport(method, url, headers, data, self._timeout)
            except ApiUnreachableError:
                if attempt >= attempts:
                    raise
                self._sleep(backoff)
                continue
            if (response.status != 429 and response.status < 500) or attempt >= attempts:
                return response
            self._sleep(_retry_after(response, backoff))

    @staticmethod
    def _progress(response: ApiResponse) -> TaskProgress:
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("task_progress"), dict) or "task_state" not in body:
            raise UnexpectedResponseError(
                f"The progress API's answer ({response.status}) is not a task progress: {response.body[:200]!r}"
            )
        return body
