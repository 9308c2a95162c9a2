"""Typed settings blocks: one frozen dataclass per config block, the single source of
its defaults, bounds and JSON schema.

A field is declared with :func:`setting`, which records its bounds or choices. The
dataclass checks them when it is built (an error names ``block.field``), and
:func:`json_schema` turns the same declarations into the block's JSON schema, so the
config schema and the code cannot disagree::

    @dataclass(frozen=True)
    class FMSettings(Settings):
        block = "methods.fm"
        learning_rate: float = setting(3e-3, gt=0, doc="peak Adam learning rate")

No JAX, no cgflow imports: every layer may use it.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import MISSING, field, fields
from typing import Any, ClassVar

_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}
_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def setting(
    default: Any = MISSING,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    choices: tuple | None = None,
    doc: str = "",
):
    """A settings field with its default, bounds (``gt``/``ge``/``lt``/``le``) or
    allowed ``choices``, and a one-line ``doc`` that becomes its schema description."""
    meta = {"gt": gt, "ge": ge, "lt": lt, "le": le, "choices": choices, "doc": doc}
    return field(default=default, metadata={k: v for k, v in meta.items() if v is not None})


@functools.cache
def _type_hints(cls) -> dict:
    """``typing.get_type_hints`` of a settings class, resolved once per class."""
    return typing.get_type_hints(cls)


class Settings:
    """Base of settings dataclasses: checks every field against its declaration.

    Subclasses are frozen dataclasses with a class attribute ``block`` (the config
    path named in errors, e.g. ``methods.fm``).
    """

    block: ClassVar[str] = "settings"

    def __post_init__(self):
        hints = _type_hints(type(self))
        for f in fields(self):
            check_value(getattr(self, f.name), hints[f.name], f.metadata, f"{self.block}.{f.name}")
        self.check()

    def check(self) -> None:
        """Checks between fields; raise ValueError naming them. None by default."""

    @classmethod
    def from_dict(cls, values: dict | None, block: str | None = None):
        """Build from a config block, rejecting keys the dataclass does not have.

        ``block`` renames the block in error messages (one settings class may serve
        several config blocks, e.g. ``methods.re`` and ``methods.fm_re``).
        """
        values = dict(values or {})
        where = block or cls.block
        allowed = {f.name for f in fields(cls)}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        if block is None:
            return cls(**values)
        try:
            return cls(**values)
        except ValueError as err:
            raise ValueError(str(err).replace(f"{cls.block}.", f"{block}.")) from None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_value(value, annotation, meta, where: str) -> None:
    """Raise ValueError naming ``where`` unless ``value`` has the declared type and
    lies within the declared bounds or choices."""
    kind = _base_type(annotation)
    optional = type(None) in typing.get_args(annotation)
    if value is None and optional:
        return
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = kind is None or isinstance(value, kind)
    if not ok:
        raise ValueError(f"{where} must be {_WORDS.get(kind, kind)}, got {value!r}")
    if "choices" in meta and value not in meta["choices"]:
        raise ValueError(f"{where}: {value!r} is not one of {list(meta['choices'])}")
    for key, test, words in (
        ("gt", lambda v, b: v > b, "> "),
        ("ge", lambda v, b: v >= b, ">= "),
        ("lt", lambda v, b: v < b, "< "),
        ("le", lambda v, b: v <= b, "<= "),
    ):
        if key in meta and not test(value, meta[key]):
            raise ValueError(f"{where} must be {words}{meta[key]}, got {value!r}")


def _base_type(annotation):
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args and typing.get_origin(annotation) is not list:
        return args[0]
    return typing.get_origin(annotation) or annotation


def json_schema(cls) -> dict:
    """The JSON schema of a settings dataclass: one property per field with its type,
    bounds, choices and default; no other keys."""
    hints = _type_hints(cls)
    props = {}
    for f in fields(cls):
        kind = _base_type(hints[f.name])
        meta = f.metadata
        prop: dict[str, Any] = {}
        if "choices" in meta:
            prop["enum"] = list(meta["choices"])
        elif kind in _TYPES:
            optional = type(None) in typing.get_args(hints[f.name])
            prop["type"] = [_TYPES[kind], "null"] if optional else _TYPES[kind]
        for key, name in (
            ("gt", "exclusiveMinimum"),
            ("ge", "minimum"),
            ("lt", "exclusiveMaximum"),
            ("le", "maximum"),
        ):
            if key in meta:
                prop[name] = meta[key]
        if f.default is not MISSING:
            prop["default"] = f.default
        if meta.get("doc"):
            prop["description"] = meta["doc"]
        props[f.name] = prop
    required = [f.name for f in fields(cls) if f.default is MISSING]
    schema = {"type": "object", "additionalProperties": False, "properties": props}
    if required:
        schema["required"] = required
    return schema
