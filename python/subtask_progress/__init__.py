"""subtask-progress for Python workers and producers: Open edX's ``instructor_task.subtasks`` functions on the
service's SQS queue and HTTP API. ``from subtask_progress.subtasks import …`` is the drop-in; the same names are
here, beside ``SubtaskProgressClient`` and the errors."""

from .client import InitializedTask, SubtaskProgressClient, TaskProgress
from .errors import (
    ApiError,
    ApiUnreachableError,
    CancelConflictError,
    ConfigurationError,
    InitializeConflictError,
    InvalidInitializeRequestError,
    InvalidSubtaskStatusError,
    SubtaskProgressError,
    UnexpectedResponseError,
)
from .status import (
    FAILURE,
    PROGRESS,
    QUEUING,
    READY_STATES,
    RETRY,
    REVOKED,
    SUBTASK_STATES,
    SUCCESS,
    SubtaskStatus,
    create_subtask_status,
    increment_subtask_status,
)
from .subtasks import (
    cancel_task,
    default_client,
    get_task_progress,
    initialize_subtask_info,
    set_default_client,
    update_subtask_status,
)

__all__ = [
    "FAILURE",
    "PROGRESS",
    "QUEUING",
    "READY_STATES",
    "RETRY",
    "REVOKED",
    "SUBTASK_STATES",
    "SUCCESS",
    "ApiError",
    "ApiUnreachableError",
    "CancelConflictError",
    "ConfigurationError",
    "InitializeConflictError",
    "InitializedTask",
    "InvalidInitializeRequestError",
    "InvalidSubtaskStatusError",
    "SubtaskProgressClient",
    "SubtaskProgressError",
    "SubtaskStatus",
    "TaskProgress",
    "UnexpectedResponseError",
    "cancel_task",
    "create_subtask_status",
    "default_client",
    "get_task_progress",
    "increment_subtask_status",
    "initialize_subtask_info",
    "set_default_client",
    "update_subtask_status",
]
