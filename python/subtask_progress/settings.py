"""Where the service is: passed explicitly, or read from the environment variables the TypeScript client reads and
the local stack's ``export …`` line sets. Each is checked where it is used, so a worker that only sends statuses
never needs the API's URL."""

from __future__ import annotations

import re
from typing import Mapping, Optional
from urllib.parse import urlsplit

from .errors import ConfigurationError

API_URL = "SUBTASK_PROGRESS_API_URL"
QUEUE_URL = "SUBTASK_PROGRESS_QUEUE_URL"
SQS_ENDPOINT = "AWS_ENDPOINT_URL_SQS"
# botocore reads AWS_DEFAULT_REGION; the JavaScript SDK (and so our TypeScript client) AWS_REGION. Either will do.
REGION_VARIABLES = ("AWS_DEFAULT_REGION", "AWS_REGION")

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")


def _url(variable: str, given: Optional[str], env: Mapping[str, str], option: str) -> str:
    value = given if given is not None else env.get(variable)
    if not value:
        raise ConfigurationError(
            f"{variable} is not set (nor the {option} argument): export it; `npm start` prints the line for the "
            "local stack"
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        source = option if given is not None else variable
        raise ConfigurationError(f"{source} '{value}' must be an http(s) URL")
    return value


def api_url(given: Optional[str], env: Mapping[str, str]) -> str:
    """The API's base URL (a stage or base path kept), without a trailing slash."""
    return _url(API_URL, given, env, "api_url").rstrip("/")


def queue_url(given: Optional[str], env: Mapping[str, str]) -> str:
    """The status queue's URL, exactly as SQS gave it."""
    return _url(QUEUE_URL, given, env, "queue_url")


def sqs_endpoint(env: Mapping[str, str]) -> Optional[str]:
    """The SQS endpoint to use instead of AWS's: botocore ≥ 1.31 reads the variable itself, older ones do not."""
    return env.get(SQS_ENDPOINT) or None


def region(given: Optional[str], session_region: Optional[str], env: Mapping[str, str]) -> str:
    """The region: the argument, else the session's (profile, ``AWS_DEFAULT_REGION``), else ``AWS_REGION``."""
    value = given or session_region or next((env[name] for name in REGION_VARIABLES if env.get(name)), None)
    if value is None:
        raise ConfigurationError(
            "No AWS region: pass region=, or export AWS_DEFAULT_REGION (boto3 and the AWS CLI read it) or AWS_REGION"
        )
    if _REGION.fullmatch(value) is None:
        raise ConfigurationError(f"region '{value}' must be a region name such as eu-west-1")
    return value
