"""Action types declared in a catalog file, served by workers in other languages.

An entry names the type and gives what `@action` gives (description, retry and timeout defaults,
a pool, optional `texts` in other languages) plus its params as a JSON Schema; no Python code.
Each becomes an `ActionDefinition` marked `external`: the API, the dashboard form and
`GET /api/actions` treat it like any other type, params are checked against the schema, the
workflow runs it as a regular activity on `<job queue>-<pool>`, and the Python worker never
polls that queue (README: "Action types in any language"). The file is read once, when
`activities` is imported, as Python action types are registered: the workflow's choices stay
the same on every replay of a worker's life.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, NoReturn

import jsonschema
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    RootModel,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import InitErrorDetails, PydanticCustomError, PydanticUndefined, core_schema

from activities import registry
from activities.registry import ActionDefinition, ActionText, RetryDefaults, _describe
from workflows.contract import ACTION_TYPE_PATTERN

# The catalog this repository ships (FANOUT_ACTIONS_CATALOG unset).
DEFAULT_CATALOG = Path(__file__).with_name("catalog.toml")
POOL_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"  # a language tag: pt-BR
Validator = jsonschema.Draft202012Validator


class CatalogError(ValueError):
    """A catalog file that cannot be used; the message names the file and the entry."""


class CatalogText(BaseModel):
    """The type's words in one language: description, params' labels and hints (by name)."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=500)
    labels: dict[str, str] = Field(default_factory=dict)
    hints: dict[str, str] = Field(default_factory=dict)


class CatalogEntry(BaseModel):
    """One entry: the same fields as `@action`, params as a JSON Schema, and a pool."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=500)
    params: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "additionalProperties": False},
        description="JSON Schema (2020-12) of the params object.",
    )
    pool: str = Field(pattern=POOL_PATTERN, description="Served on task queue <job queue>-<pool>.")
    max_attempts: int = Field(3, ge=1, le=100)
    initial_interval_s: float = Field(1.0, ge=0.01, le=3600)
    backoff: float = Field(2.0, ge=1.0, le=10.0)
    max_interval_s: float = Field(30.0, ge=0.01, le=86400)
    timeout_s: float = Field(60.0, ge=0.1, le=86400)
    heartbeat_timeout_s: float | None = Field(None, ge=0.1, le=86400)
    non_retryable_errors: list[str] = Field(default_factory=list)
    texts: dict[Annotated[str, StringConstraints(pattern=LANGUAGE_PATTERN)], CatalogText] = Field(
        default_factory=dict, description="Words in other languages, by language tag (pt-BR)."
    )


class JsonSchemaParams(RootModel[dict[str, Any]]):
    """Params of a catalog type: the JSON object itself, checked against the type's schema.

    Each type gets a subclass with its schema (`params_model_for`). Errors carry the location of
    the value at fault, as pydantic's own do, so the API and the form name the field.
    """

    root: dict[str, Any]
    json_schema: ClassVar[dict[str, Any]] = {}
    validator: ClassVar[Any] = None

    @model_validator(mode="before")
    @classmethod
    def _matches_schema(cls, data: Any) -> Any:
        if data is PydanticUndefined:  # params left out: checked as the empty object
            data = {}
        problems = [line for e in cls.validator.iter_errors(data) for line in _line_errors(e)]
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return data

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return copy.deepcopy(cls.json_schema)  # callers may change theirs

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return copy.deepcopy(cls.json_schema)


def _line_errors(error: jsonschema.ValidationError) -> list[InitErrorDetails]:
    """One jsonschema error as pydantic line errors, pydantic's words for its common cases."""
    path = tuple(error.absolute_path)
    instance = error.instance
    required = error.validator_value if isinstance(error.validator_value, list) else []
    if error.validator == "required" and isinstance(instance, dict):
        missing = [n for n in required if isinstance(n, str) and n not in instance]
        return [
            InitErrorDetails(
                type=PydanticCustomError("missing", "Field required"),
                loc=(*path, n),
                input=instance,
            )
            for n in missing
        ]
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        declared, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
        extra = [
            n for n in instance if n not in declared and not any(re.search(p, n) for p in patterns)
        ]
        if extra:
            return [
                InitErrorDetails(
                    type=PydanticCustomError("extra_forbidden", "Extra inputs are not permitted"),
                    loc=(*path, n),
                    input=instance[n],
                )
                for n in extra
            ]
    return [
        InitErrorDetails(
            type=PydanticCustomError("json_schema", "{reason}", {"reason": error.message}),
            loc=path,
            input=instance,
        )
    ]


def params_model_for(type_: str, schema: dict[str, Any]) -> type[JsonSchemaParams]:
    """A params model for one catalog type; params are required if the schema requires any."""
    requires = bool(schema.get("required"))
    namespace: dict[str, Any] = {
        "__annotations__": {"root": dict[str, Any]},
        "json_schema": schema,
        "validator": Validator(schema, format_checker=Validator.FORMAT_CHECKER),
        "__doc__": f"Params of {type_}, as its JSON Schema in the action catalog says.",
        "__module__": __name__,
    }
    if not requires:
        namespace["root"] = Field(default_factory=dict)
    name = "Params_" + re.sub(r"\W", "_", type_)
    return type(name, (JsonSchemaParams,), namespace)


async def served_elsewhere(params: JsonSchemaParams) -> NoReturn:
    """A catalog type's function: never called, its actions run on their pool's own worker."""
    raise RuntimeError("This action type is served by a worker outside this codebase.")


def parse(
    data: dict[str, Any], source: str, taken: dict[str, str | None]
) -> list[ActionDefinition]:
    """Definitions from a catalog's data; `taken` maps types already registered to their pool."""
    if set(data) - {"actions"}:
        unknown = ", ".join(sorted(set(data) - {"actions"}))
        raise CatalogError(f"{source}: unknown top-level key(s) {unknown}; expected only actions.")
    entries = data.get("actions", {})
    if not isinstance(entries, dict):
        raise CatalogError(f"{source}: actions must be a table of entries, one per action type.")
    python_pools = {pool: t for t, pool in taken.items() if pool is not None}
    definitions = []
    for type_, raw in entries.items():
        where = f"{source}, entry {type_!r}"
        if not re.fullmatch(ACTION_TYPE_PATTERN, type_) or len(type_) > 64:
            raise CatalogError(
                f"{where}: an action type is up to 64 lower-case letters, digits and _, in "
                "dot-separated parts starting with a letter (like text.reverse)."
            )
        if type_ in taken:
            raise CatalogError(f"{where}: a Python action type of that name exists already.")
        if not isinstance(raw, dict):
            raise CatalogError(f"{where}: an entry must be a table of settings.")
        try:
            entry = CatalogEntry.model_validate(raw)
        except ValidationError as err:
            raise CatalogError(f"{where}: {_describe(err)}.") from None
        if entry.pool in python_pools:
            raise CatalogError(
                f"{where}: pool {entry.pool!r} is served by the Python worker "
                f"({python_pools[entry.pool]}); give this type a pool of its own."
            )
        _check_schema(entry.params, where)
        definitions.append(
            ActionDefinition(
                type=type_,
                fn=served_elsewhere,
                params_model=params_model_for(type_, entry.params),
                description=entry.description,
                retry=RetryDefaults(
                    entry.max_attempts,
                    entry.initial_interval_s,
                    entry.backoff,
                    entry.max_interval_s,
                ),
                timeout_s=entry.timeout_s,
                heartbeat_timeout_s=entry.heartbeat_timeout_s,
                pool=entry.pool,
                non_retryable_errors=tuple(entry.non_retryable_errors),
                external=True,
                texts={
                    language: ActionText(text.description, text.labels, text.hints)
                    for language, text in entry.texts.items()
                },
            )
        )
    return definitions


def _check_schema(schema: dict[str, Any], where: str) -> None:
    if schema.get("type") != "object":
        raise CatalogError(
            f'{where}: params must be a JSON Schema of an object ("type": "object").'
        )
    if _has_reference(schema):
        raise CatalogError(
            f"{where}: params must be a self-contained JSON Schema, without $ref or $dynamicRef "
            "(it is embedded in the API's OpenAPI document)."
        )
    try:
        Validator.check_schema(schema)
    except jsonschema.SchemaError as err:
        at = "/".join(str(p) for p in err.absolute_path) or "the top"
        raise CatalogError(
            f"{where}: params is not a valid JSON Schema (at {at}): {err.message}."
        ) from None


def _has_reference(node: Any) -> bool:
    if isinstance(node, dict):
        return bool({"$ref", "$dynamicRef"} & node.keys()) or any(
            _has_reference(v) for v in node.values()
        )
    if isinstance(node, list):
        return any(_has_reference(v) for v in node)
    return False


def load(path: Path, taken: dict[str, str | None]) -> list[ActionDefinition]:
    """The definitions a catalog file declares: TOML, or JSON if its name ends in .json."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        reason = err.strerror or err
        raise CatalogError(f"Action catalog {path} cannot be read: {reason}.") from None
    source = f"Action catalog {path}"
    try:
        data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:  # JSON, TOML and UTF-8 errors
        raise CatalogError(f"{source} is not valid {_kind(path)}: {err}.") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{source} must hold an object with a table of actions.")
    return parse(data, source, taken)


def _kind(path: Path) -> str:
    return "JSON" if path.suffix == ".json" else "TOML"


def register(path: Path | None) -> None:
    """Add the types of catalog `path` (default: the shipped one) to the registry; called once
    every Python action type is registered, so that names and pools can be checked."""
    taken = {d.type: d.pool for d in registry.all_definitions()}
    for definition in load(path or DEFAULT_CATALOG, taken):
        registry.register(definition)
