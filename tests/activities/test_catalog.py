"""The action catalog: entries read from a file, what is refused and how it says so, params
checked against an entry's JSON Schema, and the Python worker never serving its types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import worker
from activities import catalog, registry
from activities.catalog import CatalogError
from tests.conftest import clean_settings
from tests.processes import Proc, clean_env

PYTHON_TYPES = {d.type: d.pool for d in registry.all_definitions() if not d.external}
ENTRY = {
    "description": "Resizes an image.",
    "pool": "images",
    "params": {
        "type": "object",
        "properties": {"url": {"type": "string"}, "width": {"type": "integer", "minimum": 16}},
        "required": ["url"],
        "additionalProperties": False,
    },
}


def write(tmp_path: Path, text: str, name: str = "catalog.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_catalog_declares_text_reverse() -> None:
    reverse = registry.get("text.reverse")
    assert reverse is not None
    assert reverse.external
    assert (reverse.pool, reverse.timeout_s, reverse.heartbeat_timeout_s) == ("node", 120, 10)
    assert reverse.retry.max_attempts == 3
    assert reverse.task_queue("fanout-jobs") == "fanout-jobs-node"
    assert not reverse.runs_local({"text": "a"}, requested=True)
    assert reverse.params_schema()["required"] == ["text"]
    assert catalog.load(catalog.DEFAULT_CATALOG, PYTHON_TYPES)[0].type == "text.reverse"


def test_an_entry_may_give_its_words_in_other_languages() -> None:
    texts = {"pt-BR": {"description": "Redimensiona uma imagem.", "labels": {"url": "Endereço"}}}
    (defn,) = catalog.parse({"actions": {"image.resize": {**ENTRY, "texts": texts}}}, "c", {})
    assert defn.description_in("pt-BR") == "Redimensiona uma imagem."
    assert defn.description_in("de") == "Resizes an image."  # no words given: English
    words = defn.text("pt-BR")
    assert words is not None
    assert dict(words.labels) == {"url": "Endereço"}
    with pytest.raises(CatalogError, match="texts"):
        catalog.parse(
            {"actions": {"image.resize": {**ENTRY, "texts": {"Portuguese!": texts["pt-BR"]}}}},
            "c",
            {},
        )


def test_toml_and_json_catalogs_give_the_same_definitions(tmp_path: Path) -> None:
    toml = write(
        tmp_path,
        """
[actions."image.resize"]
description = "Resizes an image."
pool = "images"
max_attempts = 5
initial_interval_s = 0.5
backoff = 3
max_interval_s = 10
timeout_s = 300
heartbeat_timeout_s = 20
non_retryable_errors = ["BadImage"]

[actions."image.resize".params]
type = "object"
required = ["url"]
additionalProperties = false
properties = { url = { type = "string" }, width = { type = "integer", minimum = 16 } }
""",
    )
    entry = ENTRY | {
        "max_attempts": 5,
        "initial_interval_s": 0.5,
        "backoff": 3,
        "max_interval_s": 10,
        "timeout_s": 300,
        "heartbeat_timeout_s": 20,
        "non_retryable_errors": ["BadImage"],
    }
    as_json = write(tmp_path, json.dumps({"actions": {"image.resize": entry}}), "catalog.json")
    (from_toml,), (from_json,) = catalog.load(toml, PYTHON_TYPES), catalog.load(as_json, {})
    for d in (from_toml, from_json):
        assert (d.type, d.pool, d.timeout_s, d.heartbeat_timeout_s) == (
            "image.resize", "images", 300, 20
        )  # fmt: skip
        assert vars(d.retry) == {
            "max_attempts": 5, "initial_interval_s": 0.5, "backoff": 3, "max_interval_s": 10
        }  # fmt: skip
        policy = d.retry_policy()
        assert policy.non_retryable_error_types == ["InvalidParams", "BadImage"]
        assert d.params_schema() == ENTRY["params"]
    defaults = catalog.parse(
        {"actions": {"x.y": {"description": "d", "pool": "p"}}}, "here", PYTHON_TYPES
    )[0]
    assert (defaults.retry.max_attempts, defaults.timeout_s, defaults.heartbeat_timeout_s) == (
        3, 60, None
    )  # fmt: skip


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"actions": {"Bad Type": ENTRY}}, "entry 'Bad Type': an action type is up to 64"),
        ({"actions": {"text.stats": ENTRY}}, "entry 'text.stats': a Python action type of"),
        ({"actions": {"x.y": {**ENTRY, "pool": "http"}}}, "pool 'http' is served by the Python"),
        ({"actions": {"x.y": {"description": "d"}}}, "entry 'x.y': pool: Field required."),
        ({"actions": {"x.y": {**ENTRY, "max_attempts": 0}}}, "max_attempts: Input should be"),
        ({"actions": {"x.y": {**ENTRY, "colour": "red"}}}, "colour: Extra inputs are not"),
        ({"actions": {"x.y": "image"}}, "entry 'x.y': an entry must be a table"),
        ({"actions": {"x.y": {**ENTRY, "params": {"type": "string"}}}}, "of an object"),
        (
            {"actions": {"x.y": {**ENTRY, "params": {"type": "object", "minProperties": -1}}}},
            "entry 'x.y': params is not a valid JSON Schema (at minProperties): -1 is less",
        ),
        (
            {"actions": {"x.y": {**ENTRY, "params": {"type": "object", "$ref": "#/$defs/a"}}}},
            "without $ref",
        ),
        ({"actions": ["x.y"]}, "actions must be a table of entries"),
        ({"action": {}}, "unknown top-level key(s) action"),
    ],
)
def test_a_broken_entry_is_refused_with_a_sentence_naming_file_and_entry(
    data: dict[str, Any], says: str
) -> None:
    with pytest.raises(CatalogError) as refused:
        catalog.parse(data, "Action catalog /etc/fanout.toml", PYTHON_TYPES)
    assert str(refused.value).startswith("Action catalog /etc/fanout.toml")
    assert says in str(refused.value)
    assert str(refused.value).endswith(".")


def test_a_file_that_cannot_be_read_or_parsed_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.toml"
    with pytest.raises(CatalogError, match=f"Action catalog {missing} cannot be read: No such"):
        catalog.load(missing, {})
    with pytest.raises(CatalogError, match=r"is not valid TOML: .*line 1"):
        catalog.load(write(tmp_path, "[actions\n"), {})
    with pytest.raises(CatalogError, match="is not valid JSON"):
        catalog.load(write(tmp_path, "{", "c.json"), {})
    with pytest.raises(CatalogError, match="must hold an object"):
        catalog.load(write(tmp_path, "[]", "c.json"), {})
    assert catalog.load(write(tmp_path, ""), {}) == []  # an empty catalog declares nothing


def test_params_are_checked_against_the_schema_with_the_field_named() -> None:
    (definition,) = catalog.parse({"actions": {"image.resize": ENTRY}}, "here", PYTHON_TYPES)
    model = definition.params_model
    assert model.model_validate({"url": "u", "width": 20}).model_dump() == {"url": "u", "width": 20}
    with pytest.raises(ValidationError) as refused:
        model.model_validate({"width": 3, "height": 1})
    problems = [(e["loc"], e["type"], e["msg"]) for e in refused.value.errors()]
    assert sorted(problems) == [
        (("height",), "extra_forbidden", "Extra inputs are not permitted"),
        (("url",), "missing", "Field required"),
        (("width",), "json_schema", "3 is less than the minimum of 16"),
    ]
    with pytest.raises(ValidationError, match="is not of type 'object'"):
        model.model_validate([1])


def test_the_python_worker_never_polls_for_catalog_types() -> None:
    config = clean_settings(task_queue="q")
    for options in ({}, {"actions": ["text.*"]}, {"exclude": ["demo.*"]}):
        planned = worker.plan_queues(config, **options)  # type: ignore[arg-type]
        assert "q-node" not in planned
        assert all(not d.external for ds in planned.values() for d in ds)
    with pytest.raises(ValueError, match="no action type it can run matches"):
        worker.plan_queues(config, actions=["text.reverse"], workflows=False)


async def test_a_broken_catalog_stops_a_process_at_start_with_the_sentence(
    tmp_path: Path,
) -> None:
    broken = write(tmp_path, '[actions."x.y"]\ndescription = "d"\n')
    env = clean_env(FANOUT_ACTIONS_CATALOG=str(broken), FANOUT_TEMPORAL_ADDRESS="127.0.0.1:9")
    proc = await Proc.python("worker.py", "--list-actions", env=env)
    assert await proc.exit_code() == 1
    assert proc.lines == [f"Action catalog {broken}, entry 'x.y': pool: Field required."]
