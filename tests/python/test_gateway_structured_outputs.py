"""The real `openai` SDK's structured outputs (`chat.completions.parse` and `.stream` with a
pydantic model) through the gateway against every upstream protocol: OpenAI-shaped ones take
the format as sent, Gemini a `responseJsonSchema`, Anthropic `output_config` on Claude 4.5 and a
forced answer tool before it, Bedrock a forced answer tool. The simulator answers with a value
conforming to the schema (crates/sim/README.md): strings are the first word of the last user
text, integers 42."""

from __future__ import annotations

import openai
import pytest
from pydantic import BaseModel

from gateway_fixtures import GATEWAY_KEY, start_gateway
from sim_fixtures import SIM_API_KEY

# model -> (simulated provider, upstream model)
ROUTES = {
    "via-openai": ("oa", "gpt-4o"),
    "via-azure": ("az", "gpt4o-prod"),
    "via-vllm": ("vl", "llama-3.1-70b"),
    "via-anthropic-tool": ("an", "claude-sonnet-4-20250514"),
    "via-anthropic-native": ("an", "claude-sonnet-4-5"),
    "via-bedrock": ("br", "anthropic.claude-3-5-haiku-20241022-v1:0"),
    "via-gemini": ("ge", "gemini-2.0-flash"),
}

KINDS = {
    "oa": ("openai", "/v1", ""),
    "az": ("azure_openai", "", 'api_version = "2024-10-21"\n'),
    "vl": ("openai_compatible", "/v1", ""),
    "an": ("anthropic", "", ""),
    "ge": ("gemini", "", ""),
}


class Person(BaseModel):
    name: str
    age: int


class Team(BaseModel):
    lead: Person
    members: list[Person]


def gateway_config(fleet) -> str:
    text = f'[server]\n\n[[keys]]\nname = "py"\nsecret = "{GATEWAY_KEY}"\n\n'
    for name in sorted({p for p, _ in ROUTES.values()}):
        if name == "br":
            kind, suffix = "bedrock", ""
            auth = f'aws_access_key_id = "{SIM_API_KEY}"\naws_secret_access_key = "sim-secret"\n'
        else:
            kind, suffix, extra = KINDS[name]
            auth = f'api_key = "{SIM_API_KEY}"\n{extra}'
        text += (
            f'[providers.{name}]\nkind = "{kind}"\nbase_url = "{fleet[name].base_url}{suffix}"\n{auth}'
            f'cloud = "aws"\nregion = "us-east-1"\njurisdiction = "us"\n\n'
        )
    for model, (provider, upstream) in ROUTES.items():
        text += (
            f'[deployments.{model}]\nprovider = "{provider}"\nupstream_model = "{upstream}"\n'
            f"price = {{ input = 2.5, output = 10.0 }}\n\n"
            f'[models.{model}]\ndeployments = ["{model}"]\n\n'
        )
    return text


@pytest.fixture(scope="module")
def gateway(sim_fleet):
    gw = start_gateway(gateway_config(sim_fleet))
    yield gw
    assert gw.stop() == 0


@pytest.fixture
def client(gateway, clean_sim):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)


MESSAGES = [{"role": "user", "content": "Ada is 36"}]


@pytest.mark.parametrize("model", ROUTES)
def test_parse_returns_the_pydantic_object(client, model):
    r = client.chat.completions.parse(model=model, messages=MESSAGES, response_format=Person)
    message = r.choices[0].message
    assert message.parsed == Person(name="Ada", age=42)
    assert message.tool_calls in (None, [])
    assert r.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", ROUTES)
def test_parse_follows_nested_models(client, model):
    r = client.chat.completions.parse(model=model, messages=MESSAGES, response_format=Team)
    assert r.choices[0].message.parsed == Team(lead=Person(name="Ada", age=42), members=[])


@pytest.mark.parametrize("model", ROUTES)
def test_streamed_parse_returns_the_pydantic_object(client, model):
    with client.chat.completions.stream(model=model, messages=MESSAGES, response_format=Person) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == Person(name="Ada", age=42)
    assert "".join(deltas) == final.choices[0].message.content
    assert final.choices[0].finish_reason == "stop"


@pytest.fixture
def chat_model(gateway, clean_sim):
    from langchain_openai import ChatOpenAI

    def make(model: str) -> ChatOpenAI:
        return ChatOpenAI(model=model, base_url=gateway.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)

    return make


@pytest.mark.parametrize("model", ROUTES)
def test_langchain_with_structured_output_returns_the_object(chat_model, model):
    structured = chat_model(model).with_structured_output(Person)
    assert structured.invoke("Ada is 36") == Person(name="Ada", age=42)


@pytest.mark.parametrize("model", ROUTES)
def test_langchain_streamed_structured_output_ends_with_the_object(chat_model, model):
    structured = chat_model(model).with_structured_output(Person)
    chunks = list(structured.stream("Ada is 36"))
    assert chunks, "the stream yielded nothing"
    assert chunks[-1] == Person(name="Ada", age=42)
