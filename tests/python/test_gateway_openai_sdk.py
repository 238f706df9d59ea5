"""The real `openai` SDK, pointed at the gateway, reaches simulated OpenAI, Azure OpenAI and
OpenAI-compatible providers: content, tool-call arguments and usage are checked exactly against
the simulator's documented rules (crates/sim/README.md)."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess

import openai
import pytest

from gateway_fixtures import GATEWAY_KEY, start_gateway, switchyard_binary
from sim_fixtures import SIM_API_KEY
from test_sim_sdks import expected_embedding, close

# Model name -> simulated provider name (the name appears in every reply).
ROUTES = {"via-openai": "oa", "via-azure": "az", "via-vllm": "vl"}
SYSTEM = "be brief"
USER = "hello sim world"
INPUT_TOKENS = (2 + 1) + (3 + 1)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


def gateway_config(fleet) -> str:
    providers = {
        "oa": ("openai", fleet["oa"].base_url + "/v1", ""),
        "az": ("azure_openai", fleet["az"].base_url, 'api_version = "2024-10-21"\n'),
        "vl": ("openai_compatible", fleet["vl"].base_url + "/v1", ""),
    }
    text = f'[server]\n\n[[keys]]\nname = "py"\nsecret = "{GATEWAY_KEY}"\n\n'
    for name, (kind, url, extra) in providers.items():
        text += (
            f'[providers.{name}]\nkind = "{kind}"\nbase_url = "{url}"\napi_key = "{SIM_API_KEY}"\n{extra}'
            f'cloud = "azure"\nregion = "{name}-1"\njurisdiction = "us"\n\n'
            f'[deployments.chat-{name}]\nprovider = "{name}"\nupstream_model = "gpt-4o"\n'
            f"price = {{ input = 2.5, output = 10.0 }}\n\n"
            f'[deployments.embed-{name}]\nprovider = "{name}"\nupstream_model = "text-embedding-3-small"\n'
            f"price = {{ input = 0.02, output = 0.0 }}\n\n"
        )
    for model, provider in ROUTES.items():
        text += f'[models.{model}]\ndeployments = ["chat-{provider}"]\n\n'
        text += f'[models.{model}-embed]\ndeployments = ["embed-{provider}"]\n\n'
    return text


@pytest.fixture(scope="module")
def gateway(sim_fleet):
    gw = start_gateway(gateway_config(sim_fleet))
    yield gw
    assert gw.stop() == 0, "the gateway exits cleanly on SIGTERM"


@pytest.fixture
def client(gateway, clean_sim):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)


def call_id(provider: str, last_user_text: str) -> str:
    digest = hashlib.sha256(f"{provider}\x00{last_user_text}\x00".encode()).hexdigest()
    return "call_" + digest[:24]


@pytest.mark.parametrize("model", ROUTES)
def test_chat(client, model):
    name = ROUTES[model]
    r = client.chat.completions.create(
        model=model, messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    )
    assert r.choices[0].message.content == f"{name} says: {USER}"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == INPUT_TOKENS
    assert r.usage.completion_tokens == 5
    assert r.usage.total_tokens == INPUT_TOKENS + 5


@pytest.mark.parametrize("model", ROUTES)
def test_streaming_chat_with_usage_in_the_last_chunk(client, model):
    name = ROUTES[model]
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"{name} says: {USER}"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.prompt_tokens == INPUT_TOKENS
    assert last.usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.parametrize("model", ROUTES)
def test_streaming_without_usage_has_no_usage_chunk(client, model):
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": USER}], stream=True
    )
    chunks = list(stream)
    assert all(c.choices for c in chunks), "no usage-only chunk when the client did not ask"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == f"{ROUTES[model]} says: {USER}"


@pytest.mark.parametrize("model", ROUTES)
def test_tool_call_round_trip(client, model):
    name = ROUTES[model]
    question = "Paris weather this week"
    messages = [{"role": "user", "content": question}]
    r = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.id == call_id(name, question)
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 42}
    assert r.usage.prompt_tokens == 4 + 1
    assert r.usage.completion_tokens == 2  # '{"city":"Paris","days":42}' is one word, plus one

    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny and 20C"},
    ]
    final = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
    assert final.choices[0].message.content == f"{name} got: sunny and 20C"
    assert final.choices[0].finish_reason == "stop"
    # 4+1 (user) + 1+1 (assistant: arguments JSON is one word) + 3+1 (tool result)
    assert final.usage.prompt_tokens == 11


@pytest.mark.parametrize("model", ROUTES)
def test_streamed_tool_call(client, model):
    name = ROUTES[model]
    question = "Oslo weather"
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        tools=[WEATHER],
        stream=True,
        stream_options={"include_usage": True},
    )
    calls: dict[int, dict] = {}
    finish = None
    usage = None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for d in choice.delta.tool_calls or []:
                call = calls.setdefault(d.index, {"id": None, "name": None, "arguments": ""})
                call["id"] = d.id or call["id"]
                if d.function and d.function.name:
                    call["name"] = d.function.name
                if d.function and d.function.arguments:
                    call["arguments"] += d.function.arguments
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"] == call_id(name, question)
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Oslo", "days": 42}
    assert usage.prompt_tokens == 3 and usage.completion_tokens == 2


@pytest.mark.parametrize("model", ROUTES)
def test_embeddings_base64_default_and_float(client, model):
    texts = ["alpha beta", "gamma"]
    r = client.embeddings.create(model=f"{model}-embed", input=texts)  # the SDK asks for base64
    assert [close(d.embedding, expected_embedding(t)) for d, t in zip(r.data, texts)] == [True, True]
    assert r.usage.prompt_tokens == 3
    f = client.embeddings.create(model=f"{model}-embed", input="gamma", encoding_format="float", dimensions=4)
    assert close(f.data[0].embedding, expected_embedding("gamma", 4))


def test_errors_surface_as_sdk_exceptions(client, sim_fleet):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="via-openai", messages=[])
    bad_key = openai.OpenAI(base_url=str(client.base_url), api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.chat.completions.create(model="via-openai", messages=[{"role": "user", "content": "x"}])
    sim_fleet["oa"].set_faults(fail_next=1, fail_status=429, retry_after_s=3)
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="via-openai", messages=[{"role": "user", "content": "x"}])
    assert e.value.response.headers["retry-after"] == "3"
    # The gateway retries a 5xx within its attempt budget; one that persists reaches the SDK as 502.
    sim_fleet["az"].set_faults(fail_always=True, fail_status=500)
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="via-azure", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 502
    sim_fleet["az"].clear_faults()


def test_models_lists_the_configured_models(client):
    ids = sorted(m.id for m in client.models.list())
    assert ids == sorted(list(ROUTES) + [f"{m}-embed" for m in ROUTES])


def test_demo_serves_chat_from_the_simulated_fleet(tmp_path):
    proc = subprocess.Popen(
        [switchyard_binary(), "demo", "--listen", "127.0.0.1:0", "--config-out", str(tmp_path / "demo.toml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = None
        assert proc.stdout is not None
        for line in proc.stdout:
            m = re.search(r"gateway: (http://\S+)", line)
            if m:
                url = m.group(1)
                break
        assert url, "the demo prints its gateway URL"
        demo = openai.OpenAI(base_url=url, api_key="sk-switchyard-demo", max_retries=0)
        r = demo.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hello demo"}])
        assert r.choices[0].message.content == "azure-eastus says: Hello demo"
        stream = demo.chat.completions.create(
            model="llama-3.1-70b", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream) == "coreweave-vllm says: Hi"
        e = demo.embeddings.create(model="text-embedding-3-small", input="hello")
        assert len(e.data[0].embedding) == 8
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
