"""The official OpenAI Python SDK against antwort in front of the mock backend:
create, stream, function calls (single, parallel, continued), structured output,
image input, logprobs, reasoning, refusals, length limits and error classes."""

import json

import openai
import pytest
from pydantic import BaseModel

MODEL = "mock-model"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}


def test_string_input(client):
    response = client.responses.create(model=MODEL, input="Hello from Python")
    assert response.status == "completed"
    assert response.output_text.startswith("echo: Hello from Python | system: - | messages: 1")
    assert response.usage.total_tokens > 0
    assert response.id.startswith("resp_")


def test_instructions_are_a_system_message(client):
    response = client.responses.create(model=MODEL, instructions="Be terse.", input="hi")
    assert "system: Be terse." in response.output_text
    assert response.instructions == "Be terse."


def test_message_lists_every_role_with_and_without_type(client):
    response = client.responses.create(
        model=MODEL,
        input=[
            {"role": "system", "content": "sys"},
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev"}]},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "reply"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "second"}]},
        ],
    )
    assert response.output_text == "echo: second | system: sys / dev | messages: 5 | images: 0 | tools: -"


def test_stream_grammar(client):
    events = list(client.responses.create(model=MODEL, input="stream me", stream=True))
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    terminal = [t for t in types if t in ("response.completed", "response.incomplete", "response.failed")]
    assert terminal == ["response.completed"] and types[-1] == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = [e for e in events if e.type == "response.output_text.done"]
    assert len(done) == 1 and done[0].text == deltas
    assert events[-1].response.output_text == deltas
    assert events[-1].response.usage is not None


def test_stream_helper_final_response(client):
    with client.responses.stream(model=MODEL, input="helper") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text
    assert final.output_text.startswith("echo: helper")


def test_function_call_then_continue_with_its_output(client):
    first = client.responses.create(
        model=MODEL, tools=[WEATHER], input='weather? [[tool:get_weather:{"city":"Paris"}]]'
    )
    assert [item.type for item in first.output] == ["function_call"]
    call = first.output[0]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id

    second = client.responses.create(
        model=MODEL,
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "weather in Paris?"},
            *[item.model_dump(exclude_none=True) for item in first.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'},
        ],
    )
    # user, assistant with tool_calls, tool result.
    assert "messages: 3" in second.output_text
    assert "tools: get_weather" in second.output_text


def test_parallel_function_calls(client):
    response = client.responses.create(
        model=MODEL,
        tools=[WEATHER, TIME],
        input='[[tool:get_weather:{"city":"Paris"}]] [[tool:get_time:{"tz":"UTC"}]]',
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert len({c.call_id for c in calls}) == 2
    assert len(response.output) == 2, "no empty message beside the calls"


def test_parallel_function_calls_streamed(client):
    events = list(
        client.responses.create(
            model=MODEL,
            tools=[WEATHER, TIME],
            input='[[tool:get_weather:{"city":"Paris"}]] [[tool:get_time:{"tz":"UTC"}]]',
            stream=True,
        )
    )
    final = events[-1].response
    arguments = {}
    for event in events:
        if event.type == "response.function_call_arguments.delta":
            arguments[event.item_id] = arguments.get(event.item_id, "") + event.delta
    for event in events:
        if event.type == "response.function_call_arguments.done":
            assert event.arguments == arguments[event.item_id]
        if event.type == "response.output_item.done":
            assert final.output[event.output_index].id == event.item.id


def test_tool_choice_forms(client):
    named = client.responses.create(
        model=MODEL, tools=[WEATHER], tool_choice={"type": "function", "name": "get_weather"}, input="[[echo_request]]"
    )
    sent = json.loads(named.output_text)
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    required = client.responses.create(model=MODEL, tools=[WEATHER], tool_choice="required", input="hi")
    assert required.tool_choice == "required"


def test_tool_choice_naming_an_unknown_function_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.responses.create(model=MODEL, tools=[WEATHER], tool_choice={"type": "function", "name": "nope"}, input="x")
    assert error.value.status_code == 400
    assert error.value.body["param"] == "tool_choice"


PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_structured_output_json_schema(client):
    response = client.responses.create(
        model=MODEL,
        input="who?",
        text={"format": {"type": "json_schema", "name": "person", "schema": PERSON_SCHEMA, "strict": True}},
    )
    person = json.loads(response.output_text)
    assert isinstance(person["name"], str) and isinstance(person["age"], int)


class Person(BaseModel):
    name: str
    age: int


def test_structured_output_parse(client):
    response = client.responses.parse(model=MODEL, input="who?", text_format=Person)
    assert isinstance(response.output_parsed, Person)


def test_image_input(client):
    response = client.responses.create(
        model=MODEL,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this"},
                    {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                ],
            }
        ],
    )
    assert "images: 1" in response.output_text


def test_logprobs(client):
    response = client.responses.create(
        model=MODEL, input="[[reply:one two]]", include=["message.output_text.logprobs"], top_logprobs=2
    )
    logprobs = response.output[0].content[0].logprobs
    assert [lp.token for lp in logprobs] == ["one ", "two"]
    assert all(len(lp.top_logprobs) == 2 and lp.bytes for lp in logprobs)


def test_reasoning_before_the_message(client):
    response = client.responses.create(model="mock-reasoning", input="why?")
    assert [item.type for item in response.output] == ["reasoning", "message"]
    events = list(client.responses.create(model="mock-reasoning", input="why?", stream=True))
    types = [event.type for event in events]
    assert "response.reasoning.delta" in types and "response.reasoning.done" in types


def test_refusal(client):
    response = client.responses.create(model=MODEL, input="[[refuse:I cannot help]]")
    part = response.output[0].content[0]
    assert part.type == "refusal" and part.refusal == "I cannot help"


def test_length_limit_is_incomplete(client):
    response = client.responses.create(model=MODEL, input="[[finish:length]]", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"


def test_out_of_range_value_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.responses.create(model=MODEL, input="x", temperature=5)
    assert error.value.body["param"] == "temperature"


def test_unknown_parameter_is_named(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.responses.create(model=MODEL, input="x", extra_body={"bogus_field": 1})
    assert error.value.body["param"] == "bogus_field"


def test_item_reference_without_storage_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=MODEL, input=[{"type": "item_reference", "id": "msg_1"}])


def test_backend_rate_limit_is_a_rate_limit_error(no_retry_client):
    with pytest.raises(openai.RateLimitError) as error:
        no_retry_client.responses.create(model=MODEL, input="[[error:429]] [[retry_after:1]]")
    assert error.value.response.headers["retry-after"] == "1"


def test_backend_failure_is_an_internal_server_error(no_retry_client):
    with pytest.raises(openai.InternalServerError) as error:
        no_retry_client.responses.create(model=MODEL, input="[[error:500]]")
    assert error.value.status_code == 502


def test_unknown_model_is_not_found(no_retry_client):
    with pytest.raises(openai.NotFoundError):
        no_retry_client.responses.create(model="missing-model", input="x")


def test_a_cut_stream_reports_the_failure(client):
    events = []
    raised = None
    try:
        for event in client.responses.create(model=MODEL, input="[[cut:3]] never finishes", stream=True):
            events.append(event)
    except openai.APIError as error:
        raised = error
    types = [event.type for event in events]
    # Either the SDK surfaces the `error` event as an exception, or it hands over the
    # `error` and `response.failed` events; a silent close would give neither.
    assert raised is not None or types[-2:] == ["error", "response.failed"], types
    assert "response.completed" not in types


def test_models_list(client):
    ids = [model.id for model in client.models.list()]
    assert "mock-model" in ids
