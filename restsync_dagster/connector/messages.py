"""Problems worded for people: pydantic's and dlt's validation errors as one line per key path,
with the allowed keys and a did-you-mean read from the models themselves."""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Iterable, Sequence
from typing import Any

import typing_extensions
from pydantic import BaseModel, ValidationError

from restsync_dagster.connector.model import ConnectorConfig
from restsync_dagster.connector.problems import Problem
from restsync_dagster.connector.tree import key_path


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the nearest of ``choices``, or nothing. Words swapped
    around ``_`` count as nearest (``link_header`` -> ``header_link``)."""
    options = [str(c) for c in choices]
    words = sorted(str(value).lower().split("_"))
    swapped = [c for c in options if sorted(c.lower().split("_")) == words and c != value]
    guess = swapped or difflib.get_close_matches(str(value), options, n=1)
    return f" (did you mean {guess[0]!r}?)" if guess else ""


def dlt_message(exc: Any) -> tuple[str, str]:
    """The deepest (most specific) of dlt's nested validation errors, as (key path, message)."""
    deepest = exc
    while getattr(deepest, "nested_exceptions", None):
        deepest = max(deepest.nested_exceptions, key=lambda e: e.path.count("/"))
    path = "source" + deepest.path.lstrip(".").replace("/", ".")
    field_name = getattr(deepest, "field", None)
    if field_name and "unexpected" not in deepest.msg and "missing" not in deepest.msg:
        path = f"{path}.{field_name}"
    unexpected = re.search(r"received unexpected fields `\{(.*)\}`", deepest.msg)
    if unexpected:
        keys = re.findall(r"'([^']*)'", unexpected.group(1))
        # dlt names the expected type of most blocks, but not of every one (resource_defaults,
        # client): then the type is read from RESTAPIConfig along the path.
        allowed = _typeddict_keys(getattr(deepest, "expected_type", None)) or _keys_along(
            deepest.path
        )
        hint = did_you_mean(keys[0], allowed) if keys and allowed else ""
        listing = f"; allowed: {', '.join(sorted(allowed))}" if allowed else ""
        return f"{path}.{keys[0] if keys else '?'}", f"unknown key{hint}{listing}"
    missing = re.search(r"missing required fields `?\{(.*?)\}", deepest.msg) or re.search(
        r"required fields are missing `?\{(.*?)\}", deepest.msg
    )
    if missing:
        names = re.findall(r"'([^']*)'", missing.group(1))
        return (f"{path}.{names[0]}" if names else path), "is required"
    message = re.sub(r"\s+", " ", deepest.msg.replace("`", "'")).strip()
    choice = re.search(r"field '[^=']*=(.*)' is not one of: \[(.*)\]", message)
    if choice:
        value, allowed = choice.group(1), re.findall(r"'([^']*)'", choice.group(2))
        return path, (f"{value!r} is not one of {', '.join(allowed)}{did_you_mean(value, allowed)}")
    return path, f"{message} (dlt rest_api validation)"


def _keys_along(path: str) -> list[str]:
    """The keys dlt's ``RESTAPIConfig`` allows at a validation path (``./resource_defaults``,
    ``./resources[0]/endpoint``): the TypedDicts met along it, by their type hints."""
    from dlt.sources.rest_api.typing import RESTAPIConfig

    candidates: list[Any] = [RESTAPIConfig]
    for part in (p for p in path.strip("./").split("/") if p):
        name, indexed = re.sub(r"\[\d+\]$", "", part), part.endswith("]")
        found = [_hints(spec).get(name) for spec in candidates if name in _hints(spec)]
        candidates = [t for a in found for t in _typeddicts(_item_type(a) if indexed else a)]
    return sorted({key for spec in candidates for key in _hints(spec)})


def _typeddicts(annotation: Any) -> list[Any]:
    """The TypedDicts ``annotation`` names (itself, or the members of a union)."""
    if typing_extensions.is_typeddict(annotation):
        return [annotation]
    return [t for arg in typing.get_args(annotation) for t in _typeddicts(arg)]


def _hints(spec: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(spec)
    except Exception:  # a hint dlt's module cannot resolve: no keys to offer
        return {}


def _typeddict_keys(spec: Any) -> list[str]:
    from typing import get_type_hints

    try:
        return list(get_type_hints(spec)) if spec is not None else []
    except Exception:
        return []


def pydantic_problems(label: str, exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = error["loc"]
        key_path = _loc_to_path(loc)
        if error["type"] == "extra_forbidden":
            choices = _keys_at(loc[:-1])
            hint = did_you_mean(str(loc[-1]), choices)
            message = f"unknown key{hint}; allowed: {', '.join(sorted(choices))}"
        elif error["type"] == "missing":
            message = "is required"
        else:
            message = error["msg"].removeprefix("Value error, ")
        problems.append(Problem(label, key_path, message))
    return problems


def _keys_at(loc: Sequence[int | str]) -> list[str]:
    """The keys allowed in the block at ``loc`` (``rate_limit``, ``partitions.daily``...), read
    from the model itself, so every block's typo gets its own block's choices."""
    annotation: Any = ConnectorConfig
    for part in loc:
        model = _model_in(annotation)
        if model is not None and part in model.model_fields:
            annotation = model.model_fields[str(part)].annotation
        else:  # a mapping's key or a list's index
            annotation = _item_type(annotation)
    model = _model_in(annotation)
    return sorted(model.model_fields) if model is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):  # X | None, and other unions
        model = _model_in(arg)
        if model is not None:
            return model
    return None


def _item_type(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not Ellipsis and a is not type(None)]
    if origin in (dict, list, tuple, set, frozenset) and args:
        return args[-1]
    for arg in args:  # a union: the member that holds items
        item = _item_type(arg)
        if item is not None:
            return item
    return None


def _loc_to_path(loc: Sequence[int | str]) -> str:
    return key_path("", tuple(loc))
