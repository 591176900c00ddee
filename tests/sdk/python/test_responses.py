"""The official OpenAI Python SDK against antwort in front of antwort-mock: create and
stream, input shapes and their translation to Chat Completions, function calls
(single, parallel, continued), tool_choice, structured output, images, logprobs,
reasoning, refusals, length limits, error classes, a cut stream and the model list.
The mock reflects what it received ("echo: ... | messages: N ...") and is scripted
by [[directives]] in the prompt (crates/mock/src/script.rs)."""

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
TWO_CALLS = '[[tool:get_weather:{"city":"Paris"}]] [[tool:get_time:{"tz":"UTC"}]]'
PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def stream_events(client, **params):
    return list(client.responses.create(stream=True, **params))


# --- input shapes -------------------------------------------------------------


def test_string_input(client):
    response = client.responses.create(model=MODEL, input="Hello from Python")
    assert response.status == "completed"
    assert response.id.startswith("resp_") and response.model == MODEL
    assert "echo: Hello from Python" in response.output_text
    assert response.usage.total_tokens > 0


def test_instructions_are_a_system_message(client):
    response = client.responses.create(model=MODEL, instructions="Be terse.", input="hi")
    assert "system: Be terse." in response.output_text
    assert "messages: 2" in response.output_text
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


def test_translation_to_chat_completions(client):
    response = client.responses.create(
        model=MODEL,
        input=[
            {"role": "developer", "content": "dev"},
            {"role": "user", "content": [{"type": "input_text", "text": "[[echo_request]]"}]},
        ],
        max_output_tokens=16,
        tools=[WEATHER],
        tool_choice="required",
    )
    assert response.tool_choice == "required"
    sent = json.loads(response.output_text)
    assert sent["messages"][0] == {"role": "system", "content": "dev"}
    assert sent["messages"][1]["role"] == "user"
    assert sent["max_tokens"] == 16
    assert sent["tool_choice"] == "required"
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["get_weather"]


# --- streaming ----------------------------------------------------------------


def test_stream_grammar(client):
    events = stream_events(client, model=MODEL, input="stream me")
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert [t for t in types if t in TERMINAL] == ["response.completed"]
    assert types[-1] == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = [e for e in events if e.type == "response.output_text.done"]
    assert len(done) == 1 and done[0].text == deltas
    assert deltas.startswith("echo: stream me")
    final = events[-1].response
    assert final.status == "completed" and final.output_text == deltas
    assert final.usage is not None


def test_stream_helper_final_response(client):
    with client.responses.stream(model=MODEL, input="helper") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) > 1
    assert "".join(deltas) == final.output_text
    assert final.output_text.startswith("echo: helper")



def test_keepalive_comments_during_a_slow_start_are_ignored(client):
    # run.sh sets a 200 ms keepalive interval; the mock waits 500 ms before its first chunk.
    params = {"model": MODEL, "input": "[[ttft_ms:500]] [[reply:ok]]"}
    with client.responses.with_streaming_response.create(stream=True, **params) as raw:
        assert ": keepalive" in list(raw.iter_lines())
    events = stream_events(client, **params)
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "ok"

# --- function calls -----------------------------------------------------------


def test_function_call_then_continue_with_its_output(client):
    first = client.responses.create(model=MODEL, tools=[WEATHER], input='weather? [[tool:get_weather:{"city":"Paris"}]]')
    assert [item.type for item in first.output] == ["function_call"], "one call and no message"
    call = first.output[0]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id

    # The mock is stateless: the directive would script the call again, so the
    # replayed user turn carries the question without it.
    second = client.responses.create(
        model=MODEL,
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "weather in Paris?"},
            *[item.model_dump(exclude_none=True) for item in first.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'},
        ],
    )
    assert [item.type for item in second.output] == ["message"]
    # user, assistant with tool_calls, tool result.
    assert "messages: 3" in second.output_text
    assert "tools: get_weather" in second.output_text


def test_parallel_function_calls(client):
    response = client.responses.create(model=MODEL, tools=[WEATHER, TIME], input=TWO_CALLS)
    assert [item.type for item in response.output] == ["function_call", "function_call"]
    assert [c.name for c in response.output] == ["get_weather", "get_time"]
    assert [json.loads(c.arguments) for c in response.output] == [{"city": "Paris"}, {"tz": "UTC"}]
    assert len({c.call_id for c in response.output}) == 2


def test_parallel_function_calls_streamed(client):
    events = stream_events(client, model=MODEL, tools=[WEATHER, TIME], input=TWO_CALLS)
    final = events[-1].response
    assert events[-1].type == "response.completed"
    assert [item.name for item in final.output] == ["get_weather", "get_time"]
    assert len({item.call_id for item in final.output}) == 2

    deltas = {}
    for event in events:
        if event.type == "response.function_call_arguments.delta":
            deltas[event.item_id] = deltas.get(event.item_id, "") + event.delta
    done = {e.item_id: e.arguments for e in events if e.type == "response.function_call_arguments.done"}
    assert done == deltas
    assert done == {item.id: item.arguments for item in final.output}

    added = [e for e in events if e.type == "response.output_item.added"]
    finished = [e for e in events if e.type == "response.output_item.done"]
    for event in added + finished:
        assert final.output[event.output_index].id == event.item.id
    assert sorted(e.output_index for e in finished) == [0, 1]


def test_named_tool_choice_is_sent_in_the_chat_shape(client):
    response = client.responses.create(
        model=MODEL, tools=[WEATHER], tool_choice={"type": "function", "name": "get_weather"}, input="[[echo_request]]"
    )
    assert response.tool_choice.name == "get_weather"
    sent = json.loads(response.output_text)
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_tool_choice_naming_an_unknown_function_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.responses.create(model=MODEL, tools=[WEATHER], tool_choice={"type": "function", "name": "nope"}, input="x")
    assert error.value.status_code == 400
    assert error.value.body["param"] == "tool_choice"


# --- output shapes ------------------------------------------------------------


def test_structured_output_json_schema(client):
    response = client.responses.create(
        model=MODEL,
        input="who?",
        text={"format": {"type": "json_schema", "name": "person", "schema": PERSON_SCHEMA, "strict": True}},
    )
    person = json.loads(response.output_text)
    assert isinstance(person["name"], str)
    assert isinstance(person["age"], int) and not isinstance(person["age"], bool)


class Person(BaseModel):
    name: str
    age: int


def test_structured_output_parse(client):
    response = client.responses.parse(model=MODEL, input="who?", text_format=Person)
    assert isinstance(response.output_parsed, Person)
    assert response.output_parsed == Person.model_validate_json(response.output_text)


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
    assert "echo: what is this" in response.output_text
    assert "images: 1" in response.output_text


def test_logprobs(client):
    response = client.responses.create(
        model=MODEL, input="[[reply:one two]]", include=["message.output_text.logprobs"], top_logprobs=2
    )
    logprobs = response.output[0].content[0].logprobs
    assert [lp.token for lp in logprobs] == ["one ", "two"]
    for lp in logprobs:
        assert isinstance(lp.logprob, float)
        assert bytes(lp.bytes) == lp.token.encode()
        assert len(lp.top_logprobs) == 2


def test_reasoning_before_the_message(client):
    response = client.responses.create(model="mock-reasoning", input="why?")
    assert [item.type for item in response.output] == ["reasoning", "message"]
    scripted = client.responses.create(model=MODEL, input="[[reasoning:let me think]] why?")
    assert [item.type for item in scripted.output] == ["reasoning", "message"]
    assert scripted.output[0].content[0].text == "let me think"


def test_reasoning_streamed(client):
    # The SDK identifies itself (x-stainless-* headers), so it gets OpenAI's names.
    types = [event.type for event in stream_events(client, model="mock-reasoning", input="why?")]
    assert "response.reasoning_text.delta" in types
    done = types.index("response.reasoning_text.done")
    assert types.index("response.reasoning_text.delta") < done < types.index("response.output_text.delta")
    assert types[-1] == "response.completed"


def test_reasoning_summary_when_asked(client):
    # Open models give reasoning text only; a requested summary is filled from it,
    # as LangChain and the Vercel AI SDK read it.
    response = client.responses.create(model="mock-reasoning", input="why?", reasoning={"summary": "auto"})
    assert response.output[0].summary[0].text == response.output[0].content[0].text
    events = stream_events(client, model="mock-reasoning", input="why?", reasoning={"summary": "auto"})
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary and summary == response.output[0].summary[0].text


def test_refusal(client):
    response = client.responses.create(model=MODEL, input="[[refuse:I cannot help]]")
    assert [item.type for item in response.output] == ["message"]
    part = response.output[0].content[0]
    assert part.type == "refusal" and part.refusal == "I cannot help"


def test_length_limit_is_incomplete(client):
    response = client.responses.create(model=MODEL, input="[[finish:length]]", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    events = stream_events(client, model=MODEL, input="[[finish:length]]", max_output_tokens=16)
    assert [e.type for e in events if e.type in TERMINAL] == ["response.incomplete"]
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


# --- errors -------------------------------------------------------------------


def test_out_of_range_value_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.responses.create(model=MODEL, input="x", temperature=5)
    assert error.value.status_code == 400
    assert error.value.body["param"] == "temperature"


def test_unknown_parameter_is_named(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.responses.create(model=MODEL, input="x", extra_body={"bogus_field": 1})
    assert error.value.body["param"] == "bogus_field"
    assert "bogus_field" in error.value.message


def test_item_reference_to_nothing_stored_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.responses.create(model=MODEL, input=[{"type": "item_reference", "id": "msg_1"}])
    assert error.value.status_code == 400


def test_backend_rate_limit_is_a_rate_limit_error(no_retry_client):
    with pytest.raises(openai.RateLimitError) as error:
        no_retry_client.responses.create(model=MODEL, input="[[error:429]] [[retry_after:1]]")
    assert error.value.status_code == 429
    assert error.value.response.headers["retry-after"] == "1"


def test_backend_failure_is_an_internal_server_error(no_retry_client):
    with pytest.raises(openai.InternalServerError) as error:
        no_retry_client.responses.create(model=MODEL, input="[[error:500]]")
    assert error.value.status_code == 502


def test_unknown_model_is_not_found(no_retry_client):
    with pytest.raises(openai.NotFoundError) as error:
        no_retry_client.responses.create(model="missing-model", input="x")
    assert error.value.status_code == 404


def test_a_cut_stream_reports_the_failure(no_retry_client):
    params = {"model": MODEL, "input": "[[cut:3]] never finishes", "stream": True}
    # The SDK turns the `error` event into an exception (not a connection error).
    types = []
    with pytest.raises(openai.APIError) as error:
        for event in no_retry_client.responses.create(**params):
            types.append(event.type)
    assert not isinstance(error.value, openai.APIConnectionError)
    assert error.value.body["type"] == "server_error" and error.value.message
    assert "response.output_text.delta" in types and not any(t in TERMINAL for t in types)

    # On the wire the stream ends with `error`, then `response.failed`.
    with no_retry_client.responses.with_streaming_response.create(**params) as raw:
        data = [json.loads(line[6:]) for line in raw.iter_lines() if line.startswith("data: {")]
    assert [event["type"] for event in data][-2:] == ["error", "response.failed"]
    assert data[-1]["response"]["status"] == "failed"
    assert data[-1]["response"]["error"]["message"]


def test_models_list(client):
    ids = [model.id for model in client.models.list()]
    assert "mock-model" in ids
