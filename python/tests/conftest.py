"""Shared fixtures: the local stack the run points at (through the environment `npm start` prints), and a client
built from that environment the way a worker would."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator, Mapping

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STACK_VARIABLES = (
    "SUBTASK_PROGRESS_API_URL",
    "SUBTASK_PROGRESS_QUEUE_URL",
    "SUBTASK_PROGRESS_DEAD_LETTER_QUEUE_URL",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_DEFAULT_REGION",
)


def pytest_configure(config: pytest.Config) -> None:
    """The SQS emulator serves SQS's JSON protocol only; a botocore that speaks the query protocol cannot reach it."""
    import botocore
    import botocore.session

    protocol = botocore.session.get_session().get_service_model("sqs").protocol
    if protocol != "json":
        raise pytest.UsageError(
            f"botocore {botocore.__version__} speaks SQS's {protocol} protocol; the local stack's SQS emulator serves "
            "only the JSON protocol (botocore releases since late April 2024): run with a newer boto3 (PYTHON=…)"
        )


@pytest.fixture()
def stack_env() -> Mapping[str, str]:
    """The local stack's environment; the tests that need it fail, not skip, without it."""
    missing = [name for name in STACK_VARIABLES if not os.environ.get(name)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not set: these tests run against the local stack. Start it (`npm start`) and "
            "paste its export line, or run them through `npm test` (test/e2e/python.test.ts)",
            pytrace=False,
        )
    return {name: os.environ[name] for name in STACK_VARIABLES}


@pytest.fixture()
def fresh_default_client() -> Iterator[None]:
    """The module-level functions build their client from the environment again, as a new worker process does."""
    from subtask_progress import set_default_client

    set_default_client(None)
    yield
    set_default_client(None)
