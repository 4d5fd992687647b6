"""Index and load a Functions app the way the Python worker does, without the Functions host.

Core Tools (and with them the real host) cannot be installed on an offline machine (see
shared/reference/spike.md Q7). What the host asks of the Python worker at start-up is three gRPC requests:
``WorkerInitRequest`` (the worker imports ``function_app.py``, indexes it and validates every function's
parameters against its bindings), ``FunctionsMetadataRequest`` (the worker returns the raw bindings the host
registers) and one ``FunctionLoadRequest`` per function. This harness drives exactly those handlers of
``azure-functions-runtime`` (the library the host's worker runs) with a stand-in for the generated
``protos`` module and prints the result as JSON on stdout.

Run it in a fresh interpreter (it imports ``function_app`` and indexing is not repeatable in one process)::

    python -m tools.host_index <app-directory>

Exit code 0: every function indexed and loaded. Exit code 1: the worker rejected the app; ``error`` says
why.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import types
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class _Message:
    """A protobuf message stand-in: keyword fields become attributes."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__dict__!r})"


def _message_type(name: str, **constants: int) -> type[_Message]:
    return type(name, (_Message,), dict(constants))


def stand_in_protos() -> types.ModuleType:
    """The subset of the FunctionRpc.proto generated module that indexing and loading use.

    Enum values are the ones in FunctionRpc.proto (BindingInfo.Direction in=0/out=1/inout=2,
    BindingInfo.DataType undefined=0, StatusResult.Status Failure=0/Success=1/Cancelled=2).
    """
    protos = types.ModuleType("protos")
    message_types = {
        "BindingInfo": {
            "in_": 0,
            "out": 1,
            "inout": 2,
            "undefined": 0,
            "string": 1,
            "binary": 2,
            "stream": 3,
        },
        "StatusResult": {"Failure": 0, "Success": 1, "Cancelled": 2},
        "WorkerInitResponse": {},
        "WorkerMetadata": {},
        "RpcException": {},
        "FunctionMetadataResponse": {},
        "FunctionLoadResponse": {},
        "RpcFunctionMetadata": {},
        "RpcRetryOptions": {},
    }
    for name, constants in message_types.items():
        setattr(protos, name, _message_type(name, **constants))
    return protos


def _request(**payload: Any) -> Any:
    return types.SimpleNamespace(request=types.SimpleNamespace(**payload), properties={})


def _status(result: Any) -> tuple[bool, str | None]:
    ok = result.status == 1
    exc = getattr(result, "exception", None)
    return ok, (exc.message if exc is not None else None)


async def _drive(app_dir: Path) -> dict[str, Any]:
    from azure_functions_runtime import handle_event  # type: ignore[import-untyped]
    from azure_functions_runtime.version import VERSION  # type: ignore[import-untyped]

    protos = stand_in_protos()
    init = types.SimpleNamespace(
        request=types.SimpleNamespace(
            worker_init_request=types.SimpleNamespace(capabilities={}, function_app_directory=str(app_dir))
        ),
        properties={"host": "127.0.0.1", "protos": protos},
    )
    init_response = await handle_event.worker_init_request(init)
    init_ok, init_error = _status(init_response.result)
    meta = init_response.worker_metadata
    out: dict[str, Any] = {
        "init_ok": init_ok,
        "error": init_error,
        "worker": {
            "runtime": meta.runtime_name,
            "version": meta.runtime_version,
            "worker_version": VERSION,
        },
        "functions": [],
    }
    if not init_ok:
        return out

    metadata_response = await handle_event.functions_metadata_request(_request())
    for fn in metadata_response.function_metadata_results or []:
        load_response = await handle_event.function_load_request(
            _request(function_load_request=types.SimpleNamespace(function_id=fn.function_id))
        )
        load_ok, load_error = _status(load_response.result)
        info = handle_event._functions.get_function(fn.function_id)
        out["functions"].append(
            {
                "name": fn.name,
                "function_id": fn.function_id,
                "script_file": fn.script_file,
                "raw_bindings": [json.loads(raw) for raw in fn.raw_bindings],
                "input_types": {k: v.binding_name for k, v in info.input_types.items()} if info else {},
                "output_types": {k: v.binding_name for k, v in info.output_types.items()} if info else {},
                "has_return": bool(info and info.has_return),
                "is_http_func": bool(info and info.is_http_func),
                "load_ok": load_ok and info is not None,
                "load_error": load_error,
            }
        )
    return out


def index_app(app_dir: Path) -> dict[str, Any]:
    """Index and load the app in ``app_dir`` in this process (call once per interpreter)."""
    app_dir = app_dir.resolve()
    sys.path.insert(0, str(app_dir))
    os.chdir(app_dir)
    try:
        result = asyncio.run(_drive(app_dir))
    except Exception as exc:  # the worker lets some import errors escape; report them like a failed init
        return {"init_ok": False, "error": f"{type(exc).__name__}: {exc}", "functions": []}
    result["loaded_from"] = _app_module_files(app_dir)
    return result


def _app_module_files(app_dir: Path) -> dict[str, str]:
    """Where each imported module named like a top-level entry of ``app_dir`` was loaded from (to tell the
    app's own copy from an installed one)."""
    local = {p.stem if p.suffix == ".py" else p.name for p in app_dir.iterdir()}
    files: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in local and getattr(module, "__file__", None):
            files[name] = str(module.__file__)
    return dict(sorted(files.items()))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tools.host_index <app-directory>", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = index_app(Path(args[0]))
    print(json.dumps(result, indent=2, default=str))
    ok = result["init_ok"] and result["functions"] and all(f["load_ok"] for f in result["functions"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
