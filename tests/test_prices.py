"""The reader's own price table (prices.yaml): a local or proxied model priced as they pay
for it, through the real CLI against the fake in its local flavour."""

from __future__ import annotations

import pytest
from test_models import WAL, run

from tutor.engine.prices import load_prices, match
from tutor.errors import TutorError
from tutor.store import Store

from fake_api import FakeAPI, cache_writes, text


def test_a_local_model_is_priced_from_prices_yaml_beside_the_database(tmp_path):
    (tmp_path / "prices.yaml").write_text("# USD per million tokens\nllama3:\n  input: 1\n  output: 2\n")
    db = tmp_path / "t.db"
    with FakeAPI(flavor="local") as api:
        api.enqueue(text("Hello. Do you already know about pages?"))
        r = run(["open", str(WAL), "--plain", "--db", str(db), "--base-url", api.url], "/quit\n", {})
        [req] = api.requests
    assert r.returncode == 0, r.stderr
    with Store.open(db) as store:
        [s] = store.list_sessions()
    # llama3.2 matches the prefix "llama3"; the local server reports no cache fields
    expected = (req.usage["input_tokens"] * 1 + req.output_tokens * 2) / 1e6
    assert s.cost_usd == pytest.approx(expected, rel=1e-6) and s.cost_usd > 0


def test_an_unknown_claude_id_names_the_reader_prices_instead_of_sonnet_prices(tmp_path):
    prices = tmp_path / "my-prices.yaml"
    prices.write_text("my-proxy-alias: {input: 0.5, output: 1.5, cache_read: 0.05}\n")
    with FakeAPI(thinking=True) as api:
        api.enqueue(text("Hello. Do you already know about pages?"))
        r = run(["open", str(WAL), "--plain", "--db", str(tmp_path / "t.db")], "/quit\n",
                {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": api.url, "TUTOR_MODEL": "my-proxy-alias",
                 "TUTOR_PRICES": str(prices)})
        [req] = api.requests
    assert r.returncode == 0, r.stderr
    said = r.stdout + r.stderr
    assert "your prices (my-prices.yaml line 1)" in said and "Sonnet prices" not in said
    with Store.open(tmp_path / "t.db") as store:
        [s] = store.list_sessions()
    u = req.usage
    w5, w1 = cache_writes(u)  # the 5-minute and 1-hour writes default to 1.25x and 2x input
    expected = (u["input_tokens"] * 0.5 + w5 * 0.625 + w1 * 1.0
                + u["cache_read_input_tokens"] * 0.05 + req.output_tokens * 1.5) / 1e6
    assert s.cost_usd == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("llama3:\n  input: 1\n  output: lots\n", ["line 3", "llama3 output", "USD per million"]),
        ("llama3:\n  input: 1\n", ["line 1", "at least input and output"]),
        ("llama3:\n  inptu: 1\n  output: 2\n", ["line 2", "unknown price 'inptu'"]),
        ("llama3: [1, 2]\n", ["line 1", "input/output"]),
        ("llama3:\n  input: 1\n output: 2\n", ["line 3", "not valid YAML"]),
        ("- llama3\n", ["line 1", "expected model ids"]),
        ("llama3: {input: -1, output: 2}\n", ["line 1", "≥ 0"]),
    ],
)
def test_a_bad_price_file_names_the_file_the_line_and_what_to_write(tmp_path, body, words):
    (tmp_path / "prices.yaml").write_text(body)
    r = run(["open", str(WAL), "--plain", "--db", str(tmp_path / "t.db"), "--base-url", "http://127.0.0.1:9", "--model", "llama3"],
            "/quit\n", {})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "prices.yaml" in r.stderr and len(r.stderr.strip().splitlines()) <= 2
    for w in words:
        assert w in r.stderr, r.stderr
    assert not (tmp_path / "t.db").exists()  # refused before anything was opened or saved


def test_longest_prefix_wins_and_defaults_follow_the_input_price(tmp_path):
    p = tmp_path / "prices.yaml"
    p.write_text("qwen: {input: 1, output: 1}\nqwen3-coder: {input: 2, output: 4}\n")
    table = load_prices(p)
    got = match(table, "qwen3-coder:30b")
    assert got is not None and got.output == 4 and got.cache_write == 2.5 and got.cache_read == pytest.approx(0.2)
    assert match(table, "qwen2") is not None and match(table, "llama") is None
    assert load_prices(tmp_path / "absent.yaml") == {}


def test_a_missing_file_named_by_the_environment_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTOR_PRICES", str(tmp_path / "nope.yaml"))
    from tutor.engine.prices import prices_path

    with pytest.raises(TutorError, match="no such price file"):
        load_prices(prices_path(tmp_path))
