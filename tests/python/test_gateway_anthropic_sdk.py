"""The real `anthropic` SDK, pointed at the gateway's Anthropic front door, is served by a
Bedrock and by a Gemini deployment: streaming and not, with tools. Expected values follow the
simulator's documented rules (crates/sim/README.md)."""

from __future__ import annotations

import anthropic
import pytest

from gateway_fixtures import GATEWAY_KEY, start_gateway
from sim_fixtures import SIM_API_KEY

# Model name -> simulated provider name (which appears in every reply).
ROUTES = {"via-bedrock": "br", "via-gemini": "ge"}
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}


def gateway_config(fleet) -> str:
    return f"""
[[keys]]
name = "py"
secret = "{GATEWAY_KEY}"

[providers.br]
kind = "bedrock"
base_url = "{fleet['br'].base_url}"
aws_access_key_id = "{SIM_API_KEY}"
aws_secret_access_key = "sim-secret"
cloud = "aws"
region = "us-east-1"
jurisdiction = "us"

[providers.ge]
kind = "gemini"
base_url = "{fleet['ge'].base_url}"
api_key = "{SIM_API_KEY}"
cloud = "gcp"
region = "europe-west4"
jurisdiction = "eu"

[deployments.claude-bedrock]
provider = "br"
upstream_model = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
price = {{ input = 0.8, output = 4.0 }}

[deployments.flash-gemini]
provider = "ge"
upstream_model = "gemini-2.0-flash"
price = {{ input = 0.1, output = 0.4 }}

[models.via-bedrock]
deployments = ["claude-bedrock"]

[models.via-gemini]
deployments = ["flash-gemini"]
"""


@pytest.fixture(scope="module")
def gateway(sim_fleet):
    gw = start_gateway(gateway_config(sim_fleet))
    yield gw
    assert gw.stop() == 0


@pytest.fixture
def client(gateway, clean_sim):
    return anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)


@pytest.mark.parametrize("model", ROUTES)
def test_messages(client, model):
    name = ROUTES[model]
    r = client.messages.create(
        model=model, max_tokens=100, system="be brief", messages=[{"role": "user", "content": "hello sim world"}]
    )
    assert [b.type for b in r.content] == ["text"]
    assert r.content[0].text == f"{name} says: hello sim world"
    assert r.stop_reason == "end_turn"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (7, 5)


@pytest.mark.parametrize("model", ROUTES)
def test_streaming_messages(client, model):
    name = ROUTES[model]
    with client.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "stream it please"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == f"{name} says: stream it please"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (4, 5)


@pytest.mark.parametrize("model", ROUTES)
@pytest.mark.parametrize("streamed", [False, True])
def test_tool_round_trip(client, model, streamed):
    name = ROUTES[model]
    messages = [{"role": "user", "content": "Paris weather"}]
    if streamed:
        with client.messages.stream(model=model, max_tokens=100, tools=[WEATHER], messages=messages) as s:
            first = s.get_final_message()
    else:
        first = client.messages.create(model=model, max_tokens=100, tools=[WEATHER], messages=messages)
    assert first.stop_reason == "tool_use"
    [call] = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather"
    assert call.input == {"city": "Paris", "days": 42}
    assert (first.usage.input_tokens, first.usage.output_tokens) == (3, 2)

    messages += [
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
    ]
    final = client.messages.create(model=model, max_tokens=100, tools=[WEATHER], messages=messages)
    assert final.content[0].text == f"{name} got: sunny"
    assert final.stop_reason == "end_turn"


def test_errors_use_the_anthropic_shape(client, sim_fleet):
    with pytest.raises(anthropic.NotFoundError) as e:
        client.messages.create(model="nope", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["type"] == "error"
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="via-gemini", max_tokens=10, messages=[])
    # Longer than retry.retry_after_wait_max_ms (2 s), so the gateway passes it on instead of waiting.
    sim_fleet["br"].set_faults(fail_next=1, fail_status=429, retry_after_s=3)
    with pytest.raises(anthropic.RateLimitError) as e:
        client.messages.create(model="via-bedrock", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert e.value.response.headers["retry-after"] == "3"


def test_a_stream_broken_mid_way_raises_in_the_sdk(client, sim_fleet):
    sim_fleet["br"].set_faults(error_after_tokens=2, fail_status=503)
    with pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(
            model="via-bedrock", max_tokens=100, messages=[{"role": "user", "content": "a b c d e f"}]
        ) as stream:
            for _ in stream.text_stream:
                pass


def test_count_tokens_where_the_target_can_count(client):
    r = client.messages.count_tokens(
        model="via-gemini", system="be brief", messages=[{"role": "user", "content": "hello sim world"}]
    )
    assert r.input_tokens == 7
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.count_tokens(model="via-bedrock", messages=[{"role": "user", "content": "x"}])
    assert "count_tokens is not supported" in e.value.message
