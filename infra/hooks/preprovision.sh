#!/bin/sh
# azd preprovision hook: the deployment preflight, BEFORE anything is created.
# Validates infra/remediator.config.yaml with the product's own parser (the same as
# `python -m remediator config check`), refuses placeholder ids, an environment name that breaks resource names,
# a host storage SKU the region lacks, unregistered resource providers, a missing container-writer role and
# system topics it cannot reuse, one line per problem; then writes infra/generated/deployment.json, which
# main.bicep loads. Needs Python 3.11 with the runtime requirements (`make deps`, or
# `pip install -r requirements.txt`) and `az login` (read-only calls).
# azd exports AZURE_ENV_NAME, AZURE_LOCATION, AZURE_SUBSCRIPTION_ID and every `azd env set` value; options:
#   REMEDIATOR_CONTAINER_WRITER_ROLE_ID, REMEDIATOR_HOST_STORAGE_SKU, REMEDIATOR_EVENT_SUBSCRIPTION_IDS,
#   REMEDIATOR_ASSIGN_AUDIT_POLICIES, REMEDIATOR_EVENT_WIRING_ROLE_ID, REMEDIATOR_DEPLOY_CONFIG,
#   REMEDIATOR_ENTRA_CLIENT_ID, REMEDIATOR_CONTROL_PLANE_RESOURCE_GROUPS (see docs/deploy.md, "Configure").
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
root=$(CDPATH= cd -- "${here}/../.." && pwd)
python=${REMEDIATOR_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "${root}/.venv/bin/python" ]; then python="${root}/.venv/bin/python"; else python=python3; fi
fi

cd "$root"
exec "$python" -m tools.deploy prepare
