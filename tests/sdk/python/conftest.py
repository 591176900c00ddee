"""Fixtures for the official OpenAI Python SDK suite: clients pointed at a running
gateway (tests/sdk/run.sh starts it and sets OPENAI_BASE_URL and OPENAI_API_KEY)."""

import os

import pytest
from openai import OpenAI


def _client(**options) -> OpenAI:
    return OpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ.get("OPENAI_API_KEY", "test-key"), **options)


@pytest.fixture(scope="session")
def client() -> OpenAI:
    return _client()


@pytest.fixture(scope="session")
def no_retry_client() -> OpenAI:
    """For error tests: the SDK would otherwise retry 429 and 5xx answers."""
    return _client(max_retries=0)
