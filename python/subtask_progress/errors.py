"""What the module raises, by name, so that a worker can tell a bad setup from a bad status or a refused request."""

from __future__ import annotations

from typing import Sequence

__all__ = [
    "SubtaskProgressError", "ConfigurationError", "InvalidSubtaskStatusError", "ApiUnreachableError",
    "UnexpectedResponseError", "ApiError", "InitializeConflictError", "InvalidInitializeRequestError",
    "CancelConflictError",
]


class SubtaskProgressError(Exception):
    """Base of every error this module raises itself (botocore's own errors from SQS pass through as they are)."""


class ConfigurationError(SubtaskProgressError):
    """A setting is neither passed nor in the environment, is malformed, or would send a signature in the clear."""


class InvalidSubtaskStatusError(SubtaskProgressError, ValueError):
    """A status the applier would dead-letter; ``code`` is its reason there (``COUNTS_MISMATCH``, ``INVALID_ID``, …).
    A ``ValueError``, as the reference raises for a status it cannot apply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class ApiUnreachableError(SubtaskProgressError):
    """No answer from the progress API at all: nothing listens, DNS failed, the connection broke or timed out."""


class UnexpectedResponseError(SubtaskProgressError):
    """An answer that is not what the progress API sends (a proxy's page, another service)."""


class ApiError(SubtaskProgressError):
    """The progress API answered with an error; ``error`` and ``message`` are its ``{error, message}`` body."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


class InitializeConflictError(ApiError):
    """``409``: the task exists, initialized with another request; ``fields`` names what differs."""

    def __init__(self, status: int, error: str, message: str, fields: Sequence[str]) -> None:
        super().__init__(status, error, message)
        self.fields = tuple(fields)


class InvalidInitializeRequestError(ApiError):
    """``400``: the API refused the initialization's body; the message names the first problem."""


class CancelConflictError(ApiError):
    """``409`` to a cancel: the task has already ended, or is still being initialized."""
