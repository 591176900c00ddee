"""Durable state through the official OpenAI Python SDK: retrieve, delete, input
items, and conversations continued with previous_response_id."""

import openai
import pytest

MODEL = "mock-model"


def test_retrieve_returns_what_create_returned(client):
    created = client.responses.create(model=MODEL, input="keep me", metadata={"suite": "python"})
    retrieved = client.responses.retrieve(created.id)
    assert retrieved.model_dump() == created.model_dump()


def test_streamed_responses_are_stored(client):
    with client.responses.stream(model=MODEL, input="streamed and stored") as stream:
        final = stream.get_final_response()
    assert client.responses.retrieve(final.id).output_text == final.output_text


def test_delete_then_retrieve_is_not_found(client):
    created = client.responses.create(model=MODEL, input="short-lived")
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_store_false_is_not_retrievable(client):
    created = client.responses.create(model=MODEL, input="ephemeral", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_input_items_list(client):
    created = client.responses.create(
        model=MODEL, input=[{"role": "user", "content": "one"}, {"role": "user", "content": "two"}]
    )
    items = list(client.responses.input_items.list(created.id, order="asc"))
    # Stored items come back as OpenAI returns them: typed parts and a status,
    # whatever shorthand was sent (the SDK's types fail on a string content).
    assert [item.content[0].text for item in items] == ["one", "two"]
    assert all(item.content[0].type == "input_text" for item in items)
    assert all(item.status == "completed" for item in items)
    assert all(item.id.startswith("msg_") for item in items)


def test_previous_response_id_continues_the_conversation(client):
    first = client.responses.create(model=MODEL, instructions="formal", input="first")
    second = client.responses.create(model=MODEL, input="second", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    # user, assistant, user: instructions of the first turn are not carried over.
    assert second.output_text == "echo: second | system: - | messages: 3 | images: 0 | tools: -"


def test_missing_previous_response_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.responses.create(model=MODEL, input="x", previous_response_id="resp_does_not_exist")
    assert error.value.code == "previous_response_not_found"
