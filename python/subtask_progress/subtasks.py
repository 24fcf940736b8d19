"""The drop-in for Open edX's ``instructor_task.subtasks``: the same function names and arguments, so moving a worker
over is changing its import. The functions use one ``SubtaskProgressClient`` per process, configured from the
environment on first use (``set_default_client`` installs another)."""

from __future__ import annotations

import threading
from typing import Any, Dict, Optional, Sequence

from .client import SubtaskProgressClient, TaskProgress
from .status import EntryId, SubtaskStatus, create_subtask_status, increment_subtask_status

__all__ = [
    "cancel_task",
    "create_subtask_status",
    "default_client",
    "get_task_progress",
    "increment_subtask_status",
    "initialize_subtask_info",
    "set_default_client",
    "update_subtask_status",
]

_lock = threading.Lock()
_default: Optional[SubtaskProgressClient] = None


def default_client() -> SubtaskProgressClient:
    """The process's client, built from the environment on first use (after a Celery fork, in the child)."""
    global _default
    with _lock:
        if _default is None:
            _default = SubtaskProgressClient()
        return _default


def set_default_client(client: Optional[SubtaskProgressClient]) -> None:
    """Makes the module's functions use ``client`` (``None``: build one from the environment again)."""
    global _default
    with _lock:
        _default = client


def initialize_subtask_info(
    entry_id: EntryId, action_name: str, total_num: int, subtask_id_list: Optional[Sequence[str]], **options: Any
) -> Dict[str, Any]:
    """Creates the task and its subtasks, each ``QUEUING``, before any subtask runs; returns ``task_progress``.
    See ``SubtaskProgressClient.initialize_task`` for ``options`` and errors."""
    return default_client().initialize_subtask_info(entry_id, action_name, total_num, subtask_id_list, **options)


def update_subtask_status(entry_id: EntryId, current_task_id: str, new_subtask_status: SubtaskStatus) -> None:
    """Queues the subtask's cumulative status; the service applies it at most once and folds it into the task."""
    default_client().update_subtask_status(entry_id, current_task_id, new_subtask_status)


def get_task_progress(entry_id: EntryId) -> TaskProgress:
    """The task's progress (the body of ``GET /tasks/{task_id}``)."""
    return default_client().get_task_progress(entry_id)


def cancel_task(entry_id: EntryId) -> TaskProgress:
    """Asks the service to cancel the task; its answer shows ``cancel_requested``."""
    return default_client().cancel_task(entry_id)
