"""The official SDKs accept `switchyard sim` for every protocol, with the documented deterministic output.

Rules (crates/sim/README.md): tokens are whitespace-separated words; input tokens are the words of
every message plus one per message (system instructions count as one message); the reply is
"{name} says: {last user text}"; a tool call's arguments come from its schema.
"""

from __future__ import annotations

import hashlib
import json
import struct

import pytest

from sim_fixtures import SIM_API_KEY, clean_sim, sim_fleet  # noqa: F401  (fixtures)

SYSTEM = "be brief"
USER = "hello sim world"
INPUT_TOKENS = (2 + 1) + (3 + 1)
LONG_USER = " ".join(f"w{i}" for i in range(40))  # 41 input tokens -> 16 cached
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
}
WEATHER_ARGS = {"city": "Paris", "days": 42}


def expected_embedding(text: str, dims: int = 8) -> list[float]:
    raw = b""
    block = 0
    while len(raw) < dims:
        raw += hashlib.sha256(text.encode() + struct.pack("<I", block)).digest()
        block += 1
    vals = [b / 127.5 - 1.0 for b in raw[:dims]]
    norm = sum(v * v for v in vals) ** 0.5
    return [v / norm for v in vals]


def close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) < 1e-5 for x, y in zip(a, b))


# --- OpenAI -----------------------------------------------------------------------------------


@pytest.fixture
def oa(clean_sim):
    import openai

    return openai.OpenAI(api_key=SIM_API_KEY, base_url=clean_sim["oa"].base_url + "/v1", max_retries=0)


def oa_messages(user: str = USER):
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def oa_tools():
    return [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}]


def test_openai_chat(oa, clean_sim):
    r = oa.chat.completions.create(model="gpt-4o", messages=oa_messages())
    assert r.choices[0].message.content == "oa says: hello sim world"
    assert r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (INPUT_TOKENS, 5, 12)
    assert r.usage.prompt_tokens_details.cached_tokens == 0
    stats = clean_sim["oa"].stats()
    assert stats["requests"] == 1 and stats["by_model"] == {"gpt-4o": 1}
    assert stats["last_request"]["headers"]["authorization"] == f"Bearer {SIM_API_KEY}"
    assert stats["last_request"]["body"]["messages"][1]["content"] == USER


def test_openai_cached_and_length(oa):
    r = oa.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": LONG_USER}], max_completion_tokens=3)
    assert r.choices[0].message.content == "oa says: w0"
    assert r.choices[0].finish_reason == "length"
    assert (r.usage.prompt_tokens, r.usage.prompt_tokens_details.cached_tokens) == (41, 16)


def test_openai_stream_with_usage(oa):
    chunks = list(
        oa.chat.completions.create(
            model="gpt-4o", messages=oa_messages(), stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "oa says: hello sim world"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_openai_tools(oa):
    r = oa.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Paris weather"}], tools=oa_tools())
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls" and r.choices[0].message.content is None
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == WEATHER_ARGS
    assert r.usage.completion_tokens == 2
    # Streamed: the SDK helper joins the argument fragments.
    with oa.chat.completions.stream(
        model="gpt-4o", messages=[{"role": "user", "content": "Paris weather"}], tools=oa_tools()
    ) as s:
        final = s.get_final_completion()
    scall = final.choices[0].message.tool_calls[0]
    assert scall.function.name == "get_weather" and json.loads(scall.function.arguments) == WEATHER_ARGS
    assert scall.id == call.id
    # Tool result turn.
    msgs = [
        {"role": "user", "content": "Paris weather"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny and warm"},
    ]
    r2 = oa.chat.completions.create(model="gpt-4o", messages=msgs, tools=oa_tools())
    assert r2.choices[0].message.content == "oa got: sunny and warm"
    assert r2.usage.prompt_tokens == 3 + 2 + 4


def test_openai_embeddings(oa):
    r = oa.embeddings.create(model="text-embedding-3-small", input="hello world")  # SDK asks for base64
    assert close(r.data[0].embedding, expected_embedding("hello world"))
    assert r.usage.prompt_tokens == 2
    r = oa.embeddings.create(model="text-embedding-3-small", input=["a b", "c"], encoding_format="float", dimensions=12)
    assert [len(d.embedding) for d in r.data] == [12, 12]
    assert close(r.data[1].embedding, expected_embedding("c", 12))
    assert r.usage.prompt_tokens == 3


def test_openai_faults(oa, clean_sim):
    import openai

    clean_sim["oa"].set_faults(fail_next=1, fail_status=429, retry_after_s=1)
    with pytest.raises(openai.RateLimitError):
        oa.chat.completions.create(model="gpt-4o", messages=oa_messages())
    assert oa.chat.completions.create(model="gpt-4o", messages=oa_messages()).choices[0].message.content
    clean_sim["oa"].set_faults(drop_after_tokens=2)
    got = []
    with pytest.raises(Exception):
        for c in oa.chat.completions.create(model="gpt-4o", messages=oa_messages(), stream=True):
            got.append(c)
    assert clean_sim["oa"].stats()["failures_injected"] == 1
    assert clean_sim["oa"].stats()["streams_dropped"] == 1
    bad = openai.OpenAI(api_key="wrong", base_url=clean_sim["oa"].base_url + "/v1", max_retries=0)
    clean_sim["oa"].clear_faults()
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_openai_compatible(clean_sim):
    import openai

    c = openai.OpenAI(api_key=SIM_API_KEY, base_url=clean_sim["vl"].base_url + "/v1", max_retries=0)
    r = c.chat.completions.create(model="llama", messages=oa_messages())
    assert r.choices[0].message.content == "vl says: hello sim world"
    assert r.service_tier is None


# --- Azure OpenAI -----------------------------------------------------------------------------


@pytest.fixture
def az(clean_sim):
    import openai

    return openai.AzureOpenAI(
        api_key=SIM_API_KEY, api_version="2024-10-21", azure_endpoint=clean_sim["az"].base_url, max_retries=0
    )


def test_azure_chat_stream_embeddings(az, clean_sim):
    r = az.chat.completions.create(model="my-deploy", messages=oa_messages())
    assert r.choices[0].message.content == "az says: hello sim world"
    assert r.model == "my-deploy-2024-08-06"
    assert r.usage.prompt_tokens == INPUT_TOKENS
    stats = clean_sim["az"].stats()
    assert stats["last_request"]["path"] == "/openai/deployments/my-deploy/chat/completions"
    assert stats["last_request"]["headers"]["api-key"] == SIM_API_KEY
    chunks = list(az.chat.completions.create(model="my-deploy", messages=oa_messages(), stream=True))
    assert chunks[0].choices == [] and chunks[0].object == ""
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "az says: hello sim world"
    e = az.embeddings.create(model="emb-deploy", input="hello world")
    assert close(e.data[0].embedding, expected_embedding("hello world"))


def test_azure_fault(az, clean_sim):
    import openai

    clean_sim["az"].set_faults(fail_next=1, fail_status=429)
    with pytest.raises(openai.RateLimitError) as ei:
        az.chat.completions.create(model="my-deploy", messages=oa_messages())
    assert ei.value.code == "429"


# --- Anthropic --------------------------------------------------------------------------------


@pytest.fixture
def an(clean_sim):
    import anthropic

    return anthropic.Anthropic(api_key=SIM_API_KEY, base_url=clean_sim["an"].base_url, max_retries=0)


AN_TOOLS = [{"name": "get_weather", "description": "weather", "input_schema": WEATHER_SCHEMA}]


def test_anthropic_messages(an, clean_sim):
    r = an.messages.create(model="claude-sim-1", max_tokens=100, system=SYSTEM, messages=[{"role": "user", "content": USER}])
    assert r.content[0].text == "an says: hello sim world"
    assert r.stop_reason == "end_turn"
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.cache_read_input_tokens) == (INPUT_TOKENS, 5, 0)
    assert clean_sim["an"].stats()["last_request"]["headers"].get("anthropic-version")
    r = an.messages.create(model="claude-sim-1", max_tokens=100, messages=[{"role": "user", "content": LONG_USER}])
    assert (r.usage.input_tokens, r.usage.cache_read_input_tokens) == (41 - 16, 16)
    r = an.messages.create(model="claude-sim-1", max_tokens=100, stop_sequences=["sim"], messages=[{"role": "user", "content": USER}])
    assert (r.content[0].text, r.stop_reason, r.stop_sequence) == ("an says: hello", "stop_sequence", "sim")


def test_anthropic_stream(an):
    with an.messages.stream(model="claude-sim-1", max_tokens=100, system=SYSTEM, messages=[{"role": "user", "content": USER}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "an says: hello sim world"
    assert final.usage.output_tokens == 5 and final.usage.input_tokens == INPUT_TOKENS
    assert final.stop_reason == "end_turn"


def test_anthropic_tools_and_count(an):
    msgs = [{"role": "user", "content": "Paris weather"}]
    r = an.messages.create(model="claude-sim-1", max_tokens=100, tools=AN_TOOLS, messages=msgs)
    block = r.content[0]
    assert r.stop_reason == "tool_use" and block.type == "tool_use"
    assert block.name == "get_weather" and block.input == WEATHER_ARGS and block.id.startswith("toolu_")
    assert r.usage.output_tokens == 2
    with an.messages.stream(model="claude-sim-1", max_tokens=100, tools=AN_TOOLS, messages=msgs) as s:
        final = s.get_final_message()
    assert final.content[0].input == WEATHER_ARGS
    follow = msgs + [
        {"role": "assistant", "content": [block.model_dump()]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sunny and warm"}]},
    ]
    r2 = an.messages.create(model="claude-sim-1", max_tokens=100, tools=AN_TOOLS, messages=follow)
    assert r2.content[0].text == "an got: sunny and warm"
    n = an.messages.count_tokens(model="claude-sim-1", system=SYSTEM, messages=[{"role": "user", "content": USER}])
    assert n.input_tokens == INPUT_TOKENS


def test_anthropic_faults(an, clean_sim):
    import anthropic

    clean_sim["an"].set_faults(fail_next=1, fail_status=529)
    with pytest.raises(anthropic.APIStatusError) as ei:
        an.messages.create(model="claude-sim-1", max_tokens=10, messages=[{"role": "user", "content": USER}])
    assert ei.value.status_code == 529
    clean_sim["an"].set_faults(error_after_tokens=1, fail_status=529)
    with pytest.raises(anthropic.APIStatusError):
        with an.messages.stream(model="claude-sim-1", max_tokens=100, messages=[{"role": "user", "content": USER}]) as s:
            s.get_final_message()


# --- Bedrock ----------------------------------------------------------------------------------


@pytest.fixture
def br(clean_sim):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=clean_sim["br"].base_url,
        aws_access_key_id=SIM_API_KEY,
        aws_secret_access_key="sim-secret",  # the sim's documented test secret (crates/sim/README.md)
        config=Config(retries={"total_max_attempts": 1}),
    )


MODEL_ID = "anthropic.claude-3-haiku-20240307-v1:0"
BR_TOOLS = {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": WEATHER_SCHEMA}}}]}


def test_bedrock_converse(br, clean_sim):
    r = br.converse(modelId=MODEL_ID, system=[{"text": SYSTEM}], messages=[{"role": "user", "content": [{"text": USER}]}])
    assert r["output"]["message"]["content"][0]["text"] == "br says: hello sim world"
    assert r["stopReason"] == "end_turn"
    assert (r["usage"]["inputTokens"], r["usage"]["outputTokens"], r["usage"]["totalTokens"]) == (INPUT_TOKENS, 5, 12)
    stats = clean_sim["br"].stats()
    assert stats["by_model"] == {MODEL_ID: 1}
    assert stats["last_request"]["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
    r = br.converse(modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": "Paris weather"}]}], toolConfig=BR_TOOLS)
    use = r["output"]["message"]["content"][0]["toolUse"]
    assert r["stopReason"] == "tool_use" and use["name"] == "get_weather" and use["input"] == WEATHER_ARGS


def test_bedrock_converse_stream(br):
    r = br.converse_stream(modelId=MODEL_ID, system=[{"text": SYSTEM}], messages=[{"role": "user", "content": [{"text": USER}]}])
    events = list(r["stream"])
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == "br says: hello sim world"
    assert next(e for e in events if "messageStop" in e)["messageStop"]["stopReason"] == "end_turn"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 5
    r = br.converse_stream(modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": "Paris weather"}]}], toolConfig=BR_TOOLS)
    events = list(r["stream"])
    start = next(e for e in events if "contentBlockStart" in e)["contentBlockStart"]["start"]["toolUse"]
    args = "".join(e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e)
    assert start["name"] == "get_weather" and json.loads(args) == WEATHER_ARGS


def test_bedrock_faults(br, clean_sim):
    from botocore.exceptions import EventStreamError

    clean_sim["br"].set_faults(fail_next=1, fail_status=429)
    with pytest.raises(br.exceptions.ThrottlingException):
        br.converse(modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": USER}]}])
    clean_sim["br"].set_faults(error_after_tokens=1, fail_status=429)
    r = br.converse_stream(modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": USER}]}])
    with pytest.raises(EventStreamError):
        list(r["stream"])


def test_bedrock_rejects_a_wrong_secret(clean_sim):
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=clean_sim["br"].base_url,
        aws_access_key_id=SIM_API_KEY,
        aws_secret_access_key="not-the-sim-secret",
        config=Config(retries={"total_max_attempts": 1}),
    )
    with pytest.raises(ClientError) as ei:
        client.converse(modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": USER}]}])
    assert ei.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_bedrock_invoke_embeddings(br):
    r = br.invoke_model(modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": USER, "dimensions": 16}))
    body = json.loads(r["body"].read())
    assert body["inputTextTokenCount"] == 3
    assert close(body["embedding"], expected_embedding(USER, 16))
    r = br.invoke_model(modelId="cohere.embed-english-v3", body=json.dumps({"texts": [USER, "x"], "input_type": "search_query"}))
    body = json.loads(r["body"].read())
    assert body["response_type"] == "embeddings_floats"
    assert close(body["embeddings"][1], expected_embedding("x"))


# --- Gemini and Vertex ------------------------------------------------------------------------


def gemini_client(sim):
    from google import genai
    from google.genai import types

    return genai.Client(api_key=SIM_API_KEY, http_options=types.HttpOptions(base_url=sim["ge"].base_url))


def vertex_client(sim):
    from google import genai
    from google.genai import types
    from google.oauth2.credentials import Credentials

    return genai.Client(
        vertexai=True,
        project="sim-project",
        location="us-central1",
        credentials=Credentials(token=SIM_API_KEY),
        http_options=types.HttpOptions(base_url=sim["vx"].base_url),
    )


@pytest.mark.parametrize("which", ["ge", "vx"])
def test_genai_generate(clean_sim, which):
    from google.genai import types

    client = gemini_client(clean_sim) if which == "ge" else vertex_client(clean_sim)
    cfg = types.GenerateContentConfig(system_instruction=SYSTEM)
    r = client.models.generate_content(model="gemini-2.5-flash", contents=USER, config=cfg)
    assert r.text == f"{which} says: hello sim world"
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    u = r.usage_metadata
    assert (u.prompt_token_count, u.candidates_token_count, u.total_token_count) == (INPUT_TOKENS, 5, 12)
    if which == "vx":
        assert r.create_time is not None
        assert clean_sim["vx"].stats()["last_request"]["headers"]["authorization"] == f"Bearer {SIM_API_KEY}"
    else:
        assert clean_sim["ge"].stats()["last_request"]["headers"]["x-goog-api-key"] == SIM_API_KEY
    text = ""
    last = None
    for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", contents=USER, config=cfg):
        text += chunk.text or ""
        last = chunk
    assert text == f"{which} says: hello sim world"
    assert last.usage_metadata.candidates_token_count == 5


@pytest.mark.parametrize("which", ["ge", "vx"])
def test_genai_function_calling(clean_sim, which):
    from google.genai import types

    client = gemini_client(clean_sim) if which == "ge" else vertex_client(clean_sim)
    decl = types.FunctionDeclaration(name="get_weather", parameters_json_schema=WEATHER_SCHEMA)
    cfg = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[decl])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    r = client.models.generate_content(model="gemini-2.5-flash", contents="Paris weather", config=cfg)
    call = r.function_calls[0]
    assert call.name == "get_weather" and call.args == WEATHER_ARGS
    assert r.usage_metadata.candidates_token_count == 2


def test_genai_count_and_fault(clean_sim):
    from google.genai import errors

    client = gemini_client(clean_sim)
    assert client.models.count_tokens(model="gemini-2.5-flash", contents=USER).total_tokens == 4
    clean_sim["ge"].set_faults(fail_next=1, fail_status=429, retry_after_s=3)
    with pytest.raises(errors.ClientError) as ei:
        client.models.generate_content(model="gemini-2.5-flash", contents=USER)
    assert ei.value.code == 429 and ei.value.status == "RESOURCE_EXHAUSTED"
    clean_sim["ge"].set_faults(fail_next=1, fail_status=503)
    with pytest.raises(errors.ServerError):
        client.models.generate_content(model="gemini-2.5-flash", contents=USER)
