"""Where the client finds the service: arguments first, then the variables the export line and a deployment set."""

from __future__ import annotations

import pytest

from subtask_progress import ConfigurationError
from subtask_progress import settings


def test_the_region_is_the_argument_then_the_session_s_then_aws_region() -> None:
    assert settings.region("eu-west-1", "us-east-2", {"AWS_REGION": "ap-south-1"}) == "eu-west-1"
    assert settings.region(None, "us-east-2", {"AWS_REGION": "ap-south-1"}) == "us-east-2"
    # What the JavaScript SDK reads, for a shell that exported only that.
    assert settings.region(None, None, {"AWS_REGION": "ap-south-1"}) == "ap-south-1"


def test_no_region_or_a_malformed_one_says_which_variables_to_set() -> None:
    with pytest.raises(ConfigurationError, match="AWS_DEFAULT_REGION"):
        settings.region(None, None, {})
    with pytest.raises(ConfigurationError, match="region 'Europe'"):
        settings.region("Europe", None, {})


def test_urls_come_from_the_environment_unless_given() -> None:
    env = {"SUBTASK_PROGRESS_API_URL": "https://abc.execute-api.eu-west-1.amazonaws.com/prod/"}

    assert settings.api_url(None, env) == "https://abc.execute-api.eu-west-1.amazonaws.com/prod"
    assert settings.api_url("http://127.0.0.1:3000", env) == "http://127.0.0.1:3000"
    with pytest.raises(ConfigurationError, match="SUBTASK_PROGRESS_QUEUE_URL is not set .*npm start"):
        settings.queue_url(None, env)
    with pytest.raises(ConfigurationError, match="queue_url 'sqs' must be an http"):
        settings.queue_url("sqs", env)


def test_the_sqs_endpoint_is_the_export_line_s() -> None:
    assert settings.sqs_endpoint({"AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:9324"}) == "http://127.0.0.1:9324"
    assert settings.sqs_endpoint({}) is None
