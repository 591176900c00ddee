"""The Conversations API through the official OpenAI Python SDK, and responses
that read from and add to a conversation."""

import openai
import pytest

MODEL = "mock-model"


def test_conversation_lifecycle(client):
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "hello"}], metadata={"topic": "demo"}
    )
    assert conversation.id.startswith("conv_")
    assert client.conversations.retrieve(conversation.id).metadata == {"topic": "demo"}
    assert client.conversations.update(conversation.id, metadata={"topic": "new"}).metadata == {"topic": "new"}

    added = client.conversations.items.create(
        conversation.id, items=[{"type": "message", "role": "user", "content": "more"}]
    )
    item_id = added.data[0].id
    assert client.conversations.items.retrieve(item_id, conversation_id=conversation.id).id == item_id
    items = list(client.conversations.items.list(conversation.id, order="asc"))
    assert len(items) == 2

    client.conversations.items.delete(item_id, conversation_id=conversation.id)
    assert len(list(client.conversations.items.list(conversation.id))) == 1

    deleted = client.conversations.delete(conversation.id)
    assert deleted.deleted
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)


def test_responses_read_and_extend_a_conversation(client):
    conversation = client.conversations.create(items=[{"type": "message", "role": "user", "content": "I am Ada"}])
    first = client.responses.create(model=MODEL, input="who am I?", conversation=conversation.id)
    assert "messages: 2" in first.output_text
    second = client.responses.create(model=MODEL, input="again?", conversation={"id": conversation.id})
    assert "messages: 4" in second.output_text
    assert len(list(client.conversations.items.list(conversation.id, limit=100))) == 5


def test_conversation_with_previous_response_id_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.responses.create(model=MODEL, input="x", conversation="conv_x", previous_response_id="resp_y")
    assert error.value.body["param"] == "conversation"
