"""subtask-progress for Python workers and producers: Open edX's ``instructor_task.subtasks`` functions on the
service's SQS queue and HTTP API. ``from subtask_progress.subtasks import …`` is the drop-in; the same names are
here, beside ``SubtaskProgressClient`` and the errors."""

from . import errors, subtasks
from .client import InitializedTask, SubtaskProgressClient, TaskProgress
from .errors import *  # noqa: F403 (the whole error family, as errors.__all__ names it)
from .status import FAILURE, PROGRESS, QUEUING, READY_STATES, RETRY, REVOKED, SUBTASK_STATES, SUCCESS, SubtaskStatus
from .subtasks import *  # noqa: F403 (the drop-in functions, as subtasks.__all__ names them)

__all__ = [
    "InitializedTask", "SubtaskProgressClient", "TaskProgress", "SubtaskStatus",
    "FAILURE", "PROGRESS", "QUEUING", "READY_STATES", "RETRY", "REVOKED", "SUBTASK_STATES", "SUCCESS",
]
__all__ += errors.__all__
__all__ += subtasks.__all__
