"""Strategy registry and factory.

Strategies register themselves with the :func:`register` decorator; callers build them by
name with :meth:`StrategyFactory.create`. There is deliberately no name -> class mapping
written out by hand anywhere: the registry dict is filled only by the decorator, so a plugin
(entry point or a ``.py`` file in a folder) adds a strategy without touching this module.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import marshmallow

from backend.domain.errors import Conflict, NotFound, ValidationFailed
from backend.domain.strategies.base import SignalStrategy, Strategy

__all__ = ["Strategy", "SignalStrategy", "StrategyFactory", "register", "params_json_schema"]

log = logging.getLogger(__name__)

_REGISTRY: dict[str, type[Strategy]] = {}

S = TypeVar("S", bound=type[Strategy])

KINDS = ("signal", "options")


def register(name: str) -> Callable[[S], S]:
    """Class decorator registering a strategy under ``name``.

    Registering a different class under an existing name raises :class:`Conflict`
    (code ``DUPLICATE_STRATEGY``); re-registering the very same class (a module imported
    twice through the same path) is a no-op.
    """
    if not name or not isinstance(name, str):
        raise ValueError("strategy name must be a non-empty string")

    def deco(cls: S) -> S:
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise TypeError(f"@register({name!r}) must decorate a Strategy subclass")
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls:
            raise Conflict(
                f"strategy {name!r} is already registered by {existing.__module__}.{existing.__qualname__}",
                details={"name": name},
                code="DUPLICATE_STRATEGY",
            )
        if cls.kind not in KINDS:
            raise ValueError(f"strategy {name!r}: kind must be one of {KINDS}, got {cls.kind!r}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def unregister(name: str) -> None:
    """Remove a strategy (tests and plugin reloads only)."""
    _REGISTRY.pop(name, None)


def params_json_schema(schema_cls: type[marshmallow.Schema]) -> dict[str, Any]:
    """JSON schema of a marshmallow schema, via apispec's marshmallow converter."""
    from apispec import APISpec  # lazy: only the catalog endpoint needs apispec
    from apispec.ext.marshmallow import MarshmallowPlugin

    plugin = MarshmallowPlugin(schema_name_resolver=lambda _schema: None)
    spec = APISpec(title="strategies", version="1", openapi_version="3.0.2", plugins=[plugin])
    assert plugin.converter is not None
    out = plugin.converter.schema2jsonschema(schema_cls())
    out.setdefault("type", "object")
    out.setdefault("properties", {})
    del spec
    return out


class StrategyFactory:
    """Builds strategies by registered name. Stateless: everything lives in the registry."""

    @classmethod
    def names(cls, kind: str | None = None) -> list[str]:
        return sorted(n for n, c in _REGISTRY.items() if kind is None or c.kind == kind)

    @classmethod
    def get(cls, name: str) -> type[Strategy]:
        """The registered class; unknown name -> :class:`NotFound` code ``UNKNOWN_STRATEGY``."""
        try:
            return _REGISTRY[name]
        except (KeyError, TypeError):
            known = cls.names()
            raise NotFound(
                f"unknown strategy {name!r}; known strategies: {', '.join(known) or '(none)'}",
                details={"name": name, "known": known},
                code="UNKNOWN_STRATEGY",
            ) from None

    @classmethod
    def validate(cls, name: str, params: dict[str, Any] | None) -> dict[str, Any]:
        """Validate ``params`` with the strategy's ``Params`` schema and return the loaded dict.

        Bad params -> :class:`ValidationFailed` whose ``details`` maps each field to its messages.
        """
        strategy_cls = cls.get(name)
        try:
            loaded = strategy_cls.Params().load(params or {})
        except marshmallow.ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            raise ValidationFailed(f"invalid parameters for strategy {name!r}", details=messages) from None
        return dict(loaded)

    @classmethod
    def create(cls, name: str, params: dict[str, Any] | None = None) -> Strategy:
        """Validate ``params`` and instantiate the strategy registered as ``name``."""
        loaded = cls.validate(name, params)
        return cls.get(name)(loaded)

    @classmethod
    def catalog(cls, kind: str | None = None) -> list[dict[str, Any]]:
        """One dict per strategy (sorted by name): name, kind, description, params_schema (JSON schema)."""
        return [
            {
                "name": n,
                "kind": c.kind,
                "description": c.description,
                "params_schema": params_json_schema(c.Params),
            }
            for n, c in sorted(_REGISTRY.items())
            if kind is None or c.kind == kind
        ]

    @classmethod
    def load_plugins(
        cls, entry_point_group: str = "tradeplatform.strategies", folder: str | None = None
    ) -> list[str]:
        """Import strategy plugins so their ``@register`` decorators run.

        Sources: every entry point in ``entry_point_group`` (loading it imports its module), and,
        when ``folder`` is given, every ``*.py`` file in it (files starting with ``_`` skipped),
        imported in name order. Returns the names newly registered, sorted. A plugin that fails
        to import is logged and skipped so one broken plugin does not take the platform down.
        """
        before = set(_REGISTRY)
        for ep in metadata.entry_points(group=entry_point_group):
            try:
                ep.load()
            except Exception:
                log.exception("strategy plugin entry point %s failed to load", ep.name)
        if folder is not None:
            for path in sorted(Path(folder).glob("*.py")):
                if path.name.startswith("_"):
                    continue
                mod_name = f"tradeplatform_strategy_plugin_{path.stem}"
                if mod_name in sys.modules:
                    continue
                try:
                    spec = importlib.util.spec_from_file_location(mod_name, path)
                    if spec is None or spec.loader is None:
                        continue
                    module = importlib.util.module_from_spec(spec)
                    sys.modules[mod_name] = module
                    spec.loader.exec_module(module)
                except Exception:
                    sys.modules.pop(mod_name, None)
                    log.exception("strategy plugin file %s failed to load", path)
        return sorted(set(_REGISTRY) - before)
