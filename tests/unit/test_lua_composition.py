"""The scripts as Redis receives them: the generated header, the KEYS order, the includes, and
the numbers and words they share with Python."""
from __future__ import annotations

import re
from importlib import resources

import pytest

from app.metrics import histogram_bounds
from app.queue import constants
from app.queue.keys import SCRIPT_KEYS, QueueKeys
from app.queue.scripts import NAMES, includes_of, source
from app.queue.states import DropReason, JournalEvent, Outcome, Reply, TokenState

LUA = resources.files("app.queue") / "lua"
INCLUDES = sorted(p.name.removesuffix(".lua") for p in (LUA / "includes").iterdir() if p.name.endswith(".lua"))


def header_values(text: str) -> dict[str, str]:
    return dict(re.findall(r"^local (\w+) = (.+)$", text, re.MULTILINE))


def test_the_header_states_the_python_table():
    values = header_values(constants.lua_header())
    assert values["RECLAIM_BATCH"] == str(constants.RECLAIM_BATCH)
    assert values["MAX_STATUS_IDS"] == str(constants.MAX_STATUS_IDS)
    assert values["ID_MAX"] == str(constants.ID_MAX)
    assert values["ID_PATTERN"] == f"'^[{constants.ID_CHARS}]+$'"
    assert values["FIELDS"] == "{" + ", ".join(f"'{b.stored}'" for b in constants.BOUNDS) + "}"
    assert values["LOWS"] == "{" + ", ".join(str(b.stored_low) for b in constants.BOUNDS) + "}"
    assert values["LIMITS"] == "{" + ", ".join(str(b.stored_high) for b in constants.BOUNDS) + "}"
    for enum, table in ((TokenState, "STATE"), (Reply, "REPLY"), (Outcome, "OUTCOME"), (DropReason, "DROP")):
        assert values[table] == "{" + ", ".join(f"{m.name} = '{m.value}'" for m in enum) + "}"


def test_keys_arrive_in_the_order_the_header_names_them():
    line = next(text for text in constants.lua_header().splitlines() if "KEYS[1]" in text)
    names, keys = (part.split(", ") for part in line.removeprefix("local ").split(" = "))
    assert keys == [f"KEYS[{n}]" for n in range(1, len(SCRIPT_KEYS) + 1)]
    assert names == [constants.LUA_KEY_NAMES[key] for key in SCRIPT_KEYS]
    queue = QueueKeys("q", 3)
    assert queue.script_keys == [f"{{dq:q}}:{key}" for key in SCRIPT_KEYS]
    assert len({queue.prefix in key for key in queue.script_keys}) == 1  # one hash tag: one cluster slot


def test_the_buckets_of_lua_and_of_the_metrics_agree():
    assert header_values(constants.lua_header())["BUCKETS"] == "{" + ", ".join(map(str, constants.BUCKETS)) + "}"
    assert histogram_bounds() == [str(float(b)) for b in constants.BUCKETS] + ["+Inf"]


@pytest.mark.parametrize("name", NAMES)
def test_every_script_states_its_contract_and_resolves_its_includes_once(name):
    text = (LUA / f"{name}.lua").read_text()
    assert text.startswith(f"-- {name}.lua: ")
    assert "Returns JSON" in text
    composed = source(name)
    for include in includes_of(text):
        assert composed.count(f"-- {include}.lua: ") == 1, include
    assert composed.count("-- generated from app/queue/constants.py") == 1
    # the vocabulary is folded in at load time: no table of it is built per call
    assert not re.search(r"\b(STATE|REPLY|OUTCOME|DROP|EVENT|STATUS_MODE)\b", re.sub(r"--[^\n]*", "", composed))
    assert source(name, sharded=True).startswith("local PUBLISH = 'SPUBLISH'")


def test_read_only_scripts_carry_no_reclaiming():
    for name in ("summary", "inspect"):
        assert "local function reap(" not in source(name)
        assert "local function reap(" in source("reap")


@pytest.mark.parametrize("name", INCLUDES)
def test_every_include_has_one_concern_stated_and_is_used(name):
    text = (LUA / "includes" / f"{name}.lua").read_text()
    assert text.startswith(f"-- {name}.lua: ")
    used = any(name in includes_of(source(script)) or f"-- {name}.lua: " in source(script) for script in NAMES)
    assert used, f"{name}.lua is included by no script"


def test_scripts_speak_the_vocabulary_not_bare_words():
    words = {m.value for enum in (TokenState, Reply, Outcome, DropReason, JournalEvent) for m in enum}
    for path in [*(LUA / "includes").iterdir(), *LUA.iterdir()]:
        if not path.name.endswith(".lua"):
            continue
        code = "\n".join(line.split("--")[0] for line in path.read_text().splitlines())
        bare = {w for w in words if f"'{w}'" in code}
        assert not bare, f"{path.name}: {bare}"


def test_the_id_rule_is_one_rule():
    assert constants.is_id("Ab_9-" * 25 + "xyz")
    assert not constants.is_id("x" * (constants.ID_MAX + 1))
    for bad in ("", "a|b", "a b", "é", "a/b", None, 7):
        assert not constants.is_id(bad)
