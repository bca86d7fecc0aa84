"""Rows read into a schema's shape without Pydantic validating them: for the ticket list,
whose 50 to 200 tickets of some 45 fields each cost more to validate than to query
(issue 12: the list at 100 k tickets, ≤ 30 ms).

Each field is read as Ninja reads it (`ninja.schema.DjangoGetter`): the schema's
`resolve_<field>` (given the context when it asks for it), else the attribute (or the
key, for a dict); a manager or queryset becomes a list, a callable is called; a field
whose type is a schema (alone, optional or in a list) is read the same way. The values
are not validated: the rows are the database's and the resolvers' own, which the
endpoints' schemas have always accepted, and `tests/agents/api/test_render.py` holds the
output equal to the validated schema's on every kind of ticket.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Iterable
from typing import Any, Union, get_args, get_origin

from django.db.models import Manager, QuerySet
from ninja import Schema

Reader = Callable[[Any, dict[str, Any]], dict[str, Any]]
_readers: dict[type[Schema], Reader] = {}


def rows(schema: type[Schema], items: Iterable[Any], context: dict[str, Any]) -> list[Any]:
    """`items` in `schema`'s shape, as plain data for the JSON renderer."""
    read = reader(schema)
    return [read(item, context) for item in items]


def reader(schema: type[Schema]) -> Reader:
    """How to read one row into `schema`'s fields (made once per schema)."""
    found = _readers.get(schema)
    if found is None:
        found = _readers[schema] = _reader_make(schema)
    return found


def _nested(annotation: Any) -> tuple[bool, type[Schema] | None]:
    """(a list?, the schema) of a field's type: `S`, `S | None`, `list[S]`; else no schema."""
    if get_origin(annotation) in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if len(options) == 1:
            annotation = options[0]
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return True, item if isinstance(item, type) and issubclass(item, Schema) else None
    if isinstance(annotation, type) and issubclass(annotation, Schema):
        return False, annotation
    return False, None


def _plain(value: Any) -> Any:
    # As ninja.schema.DjangoGetter._convert_result.
    if isinstance(value, Manager):
        return list(value.all())
    if isinstance(value, QuerySet):
        return list(value)
    if callable(value):
        return value()
    return value


def _reader_make(schema: type[Schema]) -> Reader:
    steps: list[tuple[str, Callable[..., Any] | None, bool, bool, Reader | None]] = []
    for name, field in schema.model_fields.items():
        if field.alias or field.validation_alias:
            raise TypeError(f"{schema.__name__}.{name}: aliases are not read here")
        resolve = getattr(schema, f"resolve_{name}", None)
        with_context = resolve is not None and "context" in inspect.signature(resolve).parameters
        many, inner = _nested(field.annotation)
        steps.append((name, resolve, with_context, many, None if inner is None else reader(inner)))

    def read(obj: Any, context: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, resolve, with_context, many, inner in steps:
            if resolve is None:
                value = _plain(obj[name] if isinstance(obj, dict) else getattr(obj, name))
            elif with_context:
                value = _plain(resolve(obj, context=context))
            else:
                value = _plain(resolve(obj))
            if inner is not None and value is not None:
                value = [inner(v, context) for v in value] if many else inner(value, context)
            out[name] = value
        return out

    return read
