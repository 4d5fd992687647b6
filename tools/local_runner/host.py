"""Index the app's registered functions and invoke them the way the Functions host does.

The host learns about a v2-model app from the raw bindings the worker reports (``app.get_functions()``);
this module builds the same routing from the same data and turns trigger payloads into the
``azure.functions`` types the worker would pass, using the library's own converters where the host sends
JSON (Event Grid).
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.timer import TimerRequest

from tools.local_runner.settings import resolve_setting_refs

logger = logging.getLogger(__name__)


class OutValue:
    """A concrete ``func.Out[T]`` the way the worker provides one for an output binding."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


@dataclass(frozen=True)
class RegisteredFunction:
    """One function as the host sees it: name, raw bindings (``%SETTING%`` resolved) and its callable."""

    name: str
    bindings: tuple[Mapping[str, Any], ...]
    user_function: Callable[..., Any]

    @property
    def trigger(self) -> Mapping[str, Any]:
        return next(b for b in self.bindings if str(b["type"]).endswith("Trigger"))

    @property
    def trigger_type(self) -> str:
        return str(self.trigger["type"])

    def output_bindings(self) -> list[Mapping[str, Any]]:
        return [b for b in self.bindings if b["direction"] == "OUT" and b["name"] != "$return"]


@dataclass
class Invocation:
    """The record of one invocation, kept for ``GET /admin/runner/invocations``."""

    id: str
    function: str
    reason: str
    started: float
    duration_ms: float = 0.0
    succeeded: bool = False
    error: str | None = None


@dataclass
class FunctionIndex:
    """The app's functions, loaded from ``function_app.py`` like the worker's indexer does."""

    functions: dict[str, RegisteredFunction]
    invocations: list[Invocation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(
        cls, app_dir: Path, *, environ: Mapping[str, str], script_file: str = "function_app.py"
    ) -> FunctionIndex:
        """Import the app module from ``app_dir`` and index its functions (once per process)."""
        sys.path.insert(0, str(app_dir.resolve()))
        module = importlib.import_module(Path(script_file).stem)
        apps = [v for v in vars(module).values() if isinstance(v, func.FunctionRegister)]
        if len(apps) != 1:
            raise ValueError(f"{script_file}: expected exactly one FunctionApp, found {len(apps)}")
        functions: dict[str, RegisteredFunction] = {}
        for fn in apps[0].get_functions():
            bindings = tuple(
                {
                    k: resolve_setting_refs(v, environ) if isinstance(v, str) else v
                    for k, v in json.loads(raw).items()
                }
                for raw in fn.get_raw_bindings()
            )
            name = str(fn.get_function_name())
            functions[name] = RegisteredFunction(
                name=name, bindings=bindings, user_function=fn.get_user_function()
            )
        return cls(functions=functions)

    def by_trigger(self, trigger_type: str) -> list[RegisteredFunction]:
        return [f for f in self.functions.values() if f.trigger_type == trigger_type]

    def invoke(
        self, fn: RegisteredFunction, trigger_value: Any, *, reason: str
    ) -> tuple[Any, list[tuple[Mapping[str, Any], Any]]]:
        """Call the function with its trigger value and fresh output slots.

        :returns: the return value and ``(binding, value)`` for every output binding that was set.
        :raises Exception: whatever the function raised (the caller maps it to the host's failure handling).
        """
        record = Invocation(id=str(uuid.uuid4()), function=fn.name, reason=reason, started=time.time())
        outs = {b["name"]: OutValue() for b in fn.output_bindings()}
        kwargs: dict[str, Any] = {str(fn.trigger["name"]): trigger_value, **outs}
        if "context" in inspect.signature(fn.user_function).parameters:
            kwargs["context"] = None
        logger.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", fn.name, reason, record.id)
        t0 = time.perf_counter()
        try:
            result = fn.user_function(**kwargs)
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            logger.error("Executed 'Functions.%s' (Failed, Id=%s): %s", fn.name, record.id, record.error)
            raise
        else:
            record.succeeded = True
            logger.info(
                "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)",
                fn.name,
                record.id,
                (time.perf_counter() - t0) * 1000,
            )
        finally:
            record.duration_ms = (time.perf_counter() - t0) * 1000
            with self._lock:
                self.invocations.append(record)
        outputs = [
            (b, outs[b["name"]].get()) for b in fn.output_bindings() if outs[b["name"]].get() is not None
        ]
        return result, outputs


def event_grid_trigger_value(event: Mapping[str, Any]) -> Any:
    """The trigger argument the worker builds from one Event Grid event (the library's own converter)."""
    return EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata=None)


def timer_trigger_value(*, past_due: bool = False) -> TimerRequest:
    return TimerRequest(past_due=past_due)


@dataclass
class LocalHost:
    """Everything the runner serves: the index, the settings environment, keys and host.json options."""

    index: FunctionIndex
    environ: Mapping[str, str]
    function_key: str
    master_key: str
    eventgrid_key: str | None = None
    route_prefix: str = "api"
    extra: dict[str, Any] = field(default_factory=dict)
