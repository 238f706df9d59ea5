"""scripts/update-prices on a small table and a made-up source (no download): numbers are
rewritten from the source, aliases and gaps keep the table's values, the source is recorded,
and entries the source splits are refused."""

import importlib.machinery
import importlib.util
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "update-prices"


def load():
    loader = importlib.machinery.SourceFileLoader("update_prices", str(SCRIPT))
    spec = importlib.util.spec_from_loader("update_prices", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


TABLE = """# header comment
version = "2000-01-01"

# --- a section comment -------
[[price]]
kinds = ["openai", "azure_openai"]
models = ["m1", "m1-alias"]
max_output = 100
input = 1.0
output = 2.0
cached_input = 0.5
cache_write = 1.0

# --- the next section ---
[[price]]
kinds = ["anthropic"]
models = ["c1"]
input = 3.0
output = 4.0
"""

SOURCE = {
    "m1": {"litellm_provider": "openai", "input_cost_per_token": 2e-06,
           "output_cost_per_token": 8e-06, "cache_read_input_token_cost": 5e-07,
           "max_output_tokens": 200},
    "azure/m1": {"litellm_provider": "azure", "input_cost_per_token": 2e-06,
                 "output_cost_per_token": 8e-06, "cache_read_input_token_cost": 5e-07,
                 "max_output_tokens": 200},
}


def test_numbers_come_from_the_source_and_the_rest_of_the_table_stays():
    up = load()
    text, notes, changed = up.regenerate(TABLE, SOURCE)
    assert changed
    first, second = text.split("[[price]]\n")[1:]
    assert "input = 2.0\n" in first and "output = 8.0\n" in first
    assert "max_output = 200\n" in first and "cached_input = 0.5\n" in first
    # Caching without a write price: writes cost the input price (the table's convention).
    assert "cache_write = 2.0\n" in first
    # Comments and grouping are kept; the alias is priced like its entry.
    assert "# --- the next section ---" in first
    assert 'models = ["m1", "m1-alias"]' in first
    assert any("m1-alias" in n for n in notes)
    # Not in the source: kept and marked.
    assert second.startswith("# not in the source")
    assert "input = 3.0\n" in second
    # The source is recorded and the version bumped.
    assert f'source = "litellm {up.LITELLM_VERSION} ' in text
    assert 'version = "2000-01-01"' not in text
    # Running it again changes nothing.
    again, _, changed_again = up.regenerate(text, SOURCE)
    assert again == text and not changed_again


def test_an_entry_whose_models_differ_in_the_source_must_be_split():
    up = load()
    source = dict(SOURCE)
    source["azure/m1"] = dict(SOURCE["azure/m1"], input_cost_per_token=2.2e-06)
    with pytest.raises(SystemExit) as e:
        up.regenerate(TABLE, source)
    assert "split the entry" in str(e.value)


def test_a_kind_the_source_does_not_price_must_be_split():
    up = load()
    source = {"m1": SOURCE["m1"]}
    with pytest.raises(SystemExit) as e:
        up.regenerate(TABLE, source)
    assert "not for ['azure_openai']" in str(e.value)


def test_a_wheel_with_another_hash_is_refused(tmp_path):
    up = load()
    wheel = tmp_path / "litellm.whl"
    wheel.write_bytes(b"not the pinned wheel")
    with pytest.raises(SystemExit) as e:
        up.load_source(wheel)
    assert "expected" in str(e.value)
