"""Authentication, scopes and rate limits as the official Python SDK sees them:
each refusal raises the SDK's own exception class, with OpenAI's error body."""

import os

import openai
import pytest
from openai import OpenAI

MODEL = "mock-model"


def test_a_wrong_key_raises_authentication_error():
    client = OpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key="sk-not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        client.responses.create(model=MODEL, input="hi")
    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"


def test_a_missing_scope_raises_permission_denied_error(client):
    created = client.responses.create(model=MODEL, input="hi")
    reader = OpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key="test-reader-key", max_retries=0)
    # The reader key reads what its subject created ...
    assert reader.responses.retrieve(created.id).id == created.id
    # ... and writes nothing.
    with pytest.raises(openai.PermissionDeniedError) as raised:
        reader.responses.create(model=MODEL, input="hi")
    assert raised.value.status_code == 403
    assert "responses:write" in raised.value.message


def test_a_limit_raises_rate_limit_error_with_openais_headers():
    limited = OpenAI(base_url=os.environ["ANTWORT_LIMITED_URL"], api_key="test-key", max_retries=0)
    first = limited.models.with_raw_response.list()
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    limited.models.list()
    with pytest.raises(openai.RateLimitError) as raised:
        limited.models.list()
    assert raised.value.status_code == 429
    assert raised.value.code == "rate_limit_exceeded"
    assert int(raised.value.response.headers["retry-after"]) >= 1
