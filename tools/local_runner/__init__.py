"""A local stand-in for the Azure Functions host (tooling, not product).

Core Tools cannot be installed offline (shared/reference/spike.md Q7), so the demo and the end-to-end tests
run ``function_app.py`` under this runner instead. It loads the app's registered functions the way the host
does (from ``app.get_functions()`` raw bindings) and dispatches to them like the host:

- Event Grid: ``POST /runtime/webhooks/eventgrid?functionName=<name>`` with header ``aeg-event-type``
  (``Notification`` runs the function per event and answers 202, ``SubscriptionValidation`` answers 200 with
  the ``validationResponse``, anything else 400, a function exception 500 so Event Grid retries);
- HTTP triggers at ``/api/<route>`` with the function key (``?code=`` or ``x-functions-key``) for auth level
  FUNCTION;
- non-HTTP functions (timer) at ``POST /admin/functions/<name>`` with the master key;
- queue triggers polled from Azurite: base64 bodies, dequeue count, after ``maxDequeueCount`` (host.json, 5)
  the message moves to ``<queue>-poison``.

On a machine with Core Tools, ``func start`` runs the same app with the same ``local.settings.json``.
"""

from tools.local_runner.host import FunctionIndex, LocalHost
from tools.local_runner.settings import HostConfig, load_local_settings, resolve_setting_refs

__all__ = ["FunctionIndex", "HostConfig", "LocalHost", "load_local_settings", "resolve_setting_refs"]
