"""The JSON form the frozen records share (``model.json``, ``metrics.json``,
``status.json``): fields by name, keys a record does not know kept under its
``extra`` and written back, optional fields (default None) left out while None.

No cgflow imports: every layer may use it.
"""

from __future__ import annotations

import dataclasses


def split_known(cls, d: dict) -> tuple[dict, dict]:
    """``d``'s keys that are fields of the record class ``cls`` (but ``extra``), and
    the rest (its ``extra``)."""
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    return ({k: v for k, v in d.items() if k in names},
            {k: v for k, v in d.items() if k not in names})  # fmt: skip


def missing_fields(cls, d: dict) -> list[str]:
    """The fields of ``cls`` without a default that ``d`` lacks."""
    return [f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            and f.name not in d]  # fmt: skip


def record_json(record, always: tuple[str, ...] = (), convert: dict | None = None) -> dict:
    """``record`` as its JSON dict: ``extra``'s keys, then every field but those of
    default None that are None (unless named in ``always``); a field in ``convert``
    is written as ``convert[name](value)``, a tuple as a list."""
    convert = convert or {}
    out = dict(record.extra)
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if f.name == "extra" or (value is None and f.default is None and f.name not in always):
            continue
        if value is not None and f.name in convert:
            value = convert[f.name](value)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out
