"""What every snapshot record shares: strict fields, and record lists that know "not collected" from "none".

Kept apart so snapshot.py and its ESXi and guest siblings share one mechanism without importing each other.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    model_serializer,
    model_validator,
)


class StrictModel(BaseModel):
    """Strict base: unknown fields are an error, so a typo in a hand-edited snapshot is caught."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NullableLists(StrictModel):
    """A record list given as None (null in JSON) was not collected: it is held as [] for callers and written back
    as null. `COLLECTIONS` names the lists that can be absent."""

    COLLECTIONS: ClassVar[tuple[str, ...]] = ()
    _absent: set[str] = PrivateAttr(default_factory=set)

    @model_validator(mode="wrap")
    @classmethod
    def _null_lists(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Self:
        absent: set[str] = set()
        if isinstance(data, dict):
            data = dict(data)
            for name in cls.COLLECTIONS:
                if name in data and data[name] is None:
                    data[name] = []
                    absent.add(name)
        model: Self = handler(data)
        if absent:
            model._absent = absent
        return model

    @model_serializer(mode="wrap")
    def _write_nulls(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        for name in self._absent:
            if name in out and not getattr(self, name):
                out[name] = None
        return out

    def has(self, name: str) -> bool:
        """Was this list collected? (An empty list that was collected means "none".)"""
        return name not in self._absent or bool(getattr(self, name))

    def mark_absent(self, *names: str) -> None:
        """Record that these lists were not in the input (sources use it; rules never do)."""
        self._absent.update(n for n in names if n in self.COLLECTIONS)
