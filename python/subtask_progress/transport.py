"""One HTTP exchange with the progress API, on the standard library: the answer read whole, error statuses
returned rather than raised, and no answer at all raised as ``ApiUnreachableError``."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from .errors import ApiUnreachableError


@dataclass(frozen=True)
class ApiResponse:
    """An answer of the API: its status, headers (names in lower case) and body."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        """The body as JSON; ``None`` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def urllib_transport(
    method: str, url: str, headers: Mapping[str, str], body: Optional[bytes], timeout: float
) -> ApiResponse:
    """Sends the request with ``urllib``; a 4xx or 5xx answer is an ``ApiResponse`` like any other."""
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return ApiResponse(answer.status, _lower(answer.headers.items()), answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return ApiResponse(error.code, _lower(error.headers.items()), error.read())
    except (urllib.error.URLError, socket.timeout, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise ApiUnreachableError(f"Cannot reach the progress API at {url}: {reason}") from error


def _lower(items: Any) -> Mapping[str, str]:
    return {str(name).lower(): str(value) for name, value in items}
