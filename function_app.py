"""Azure Functions entry point (v2 programming model): trigger glue only.

Each function decodes its trigger input, calls ``remediator.service``, and encodes the result.
"""

import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness: the app loaded."""
    return func.HttpResponse(json.dumps({"status": "ok"}), mimetype="application/json")
