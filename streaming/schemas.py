"""Spark schemas of the stream events, derived from their pydantic models (``smartcity.events``), never rewritten.

A model's fields map to Spark types: ``str``/``Literal``/enums to strings, ``int`` to longs, ``float`` to doubles,
``bool`` to booleans, tz-aware datetimes to timestamps, nested models to structs, tuples and lists to arrays.
Optional fields (``X | None``) are nullable; the others are not, but Spark's JSON reader makes every field
nullable anyway, so a record missing a field reads as null and is caught downstream.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from typing import Any

import pydantic
from pydantic import BaseModel
from pyspark.sql import types as T

_SCALARS: dict[type, T.DataType] = {
    str: T.StringType(),
    int: T.LongType(),
    float: T.DoubleType(),
    bool: T.BooleanType(),
    dt.datetime: T.TimestampType(),
    dt.date: T.DateType(),
}
# pydantic's constrained datetimes are marker classes, not datetime subclasses.
_PYDANTIC_DATETIMES = (pydantic.AwareDatetime, pydantic.NaiveDatetime, pydantic.PastDatetime, pydantic.FutureDatetime)


def spark_type(annotation: Any, where: str = "") -> T.DataType:
    """The Spark type of one pydantic field annotation; ``TypeError`` naming the field for an unmappable one."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return spark_type(args[0], where)
    if origin in (typing.Union, types.UnionType):
        present = [arg for arg in args if arg is not type(None)]
        if len(present) == 1:
            return spark_type(present[0], where)
        raise TypeError(f"{where}: a union of several types ({annotation}) has no Spark type")
    if origin is typing.Literal:
        return spark_type(type(args[0]), where)
    if origin in (tuple, list, set, frozenset):
        element_types = {a for a in args if a is not Ellipsis}
        if len(element_types) != 1:
            raise TypeError(f"{where}: a sequence of mixed types ({annotation}) has no Spark type")
        return T.ArrayType(spark_type(element_types.pop(), where))
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return spark_schema(annotation)
        if issubclass(annotation, _PYDANTIC_DATETIMES):
            return T.TimestampType()
        for python_type in (bool, int, float, str, dt.datetime, dt.date):  # bool before int: bool is an int
            if issubclass(annotation, python_type):
                return _SCALARS[python_type]
    raise TypeError(f"{where}: no Spark type for {annotation!r}")


def spark_schema(model: type[BaseModel]) -> T.StructType:
    """The StructType of a pydantic model, one field per model field, under the model's JSON names."""
    fields = []
    for name, info in model.model_fields.items():
        nullable = not info.is_required() or _is_optional(info.annotation)
        fields.append(T.StructField(info.alias or name, spark_type(info.annotation, f"{model.__name__}.{name}"), nullable))
    return T.StructType(fields)


def _is_optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation)
