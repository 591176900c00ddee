"""Context management through the official OpenAI Python SDK: counting input
tokens, and compacting a conversation into an item that continues it."""

import openai
import pytest

MODEL = "mock-model"


def test_input_tokens_count(client):
    short = client.responses.input_tokens.count(model=MODEL, input="hello")
    long = client.responses.input_tokens.count(model=MODEL, input="hello " * 200)
    assert short.object == "response.input_tokens"
    assert 0 < short.input_tokens < long.input_tokens


def test_compact_then_continue_from_the_summary(client):
    first = client.responses.create(model=MODEL, input="my name is Ada")
    compacted = client.responses.compact(model=MODEL, previous_response_id=first.id)
    assert compacted.object == "response.compaction"
    item = compacted.output[0]
    assert item.type == "compaction" and item.encrypted_content
    continued = client.responses.create(
        model=MODEL, input=[item.model_dump(exclude_none=True), {"role": "user", "content": "what is my name?"}]
    )
    # The summary (as one message) and the new question.
    assert "messages: 2" in continued.output_text


def test_compact_without_model_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError):
        client.responses.compact(model="", input="x")
