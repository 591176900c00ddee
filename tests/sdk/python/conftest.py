"""Fixtures for the official OpenAI Python SDK suite: clients pointed at a running
gateway (tests/sdk/run.sh starts it and sets OPENAI_BASE_URL)."""

import os

import pytest
from openai import OpenAI


@pytest.fixture(scope="session")
def client() -> OpenAI:
    return OpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ.get("OPENAI_API_KEY", "test"))


@pytest.fixture(scope="session")
def no_retry_client() -> OpenAI:
    """For error tests: the SDK would otherwise retry 429 and 5xx answers."""
    return OpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key="test", max_retries=0)
