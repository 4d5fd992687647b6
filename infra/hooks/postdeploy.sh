#!/bin/sh
# azd postdeploy hook: wire Event Grid to the freshly deployed functions by deploying infra/events.bicep.
# It runs after `azd deploy` because Event Grid validates an AzureFunction endpoint when the subscription is
# created, so on_cluster_write and on_policy_state must exist first. Safe to re-run (the deployment is idempotent).
# azd exports the environment (main.bicep outputs + AZURE_ENV_NAME, AZURE_SUBSCRIPTION_ID, AZURE_LOCATION).
# Manual use: export those variables (see docs/deploy.md, "Manual path") and run this script.
set -eu

: "${AZURE_ENV_NAME:?}" "${AZURE_SUBSCRIPTION_ID:?}" "${AZURE_LOCATION:?}"
: "${AZURE_FUNCTION_APP_ID:?run azd provision first}" "${EVENT_WIRING:?}" "${EVENT_SUBSCRIPTION_IDS:?}"
: "${DEADLETTER_STORAGE_ACCOUNT_ID:?}" "${DEADLETTER_CONTAINER_NAME:?}"

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
functions="on_cluster_write on_policy_state"
attempts=${REMEDIATOR_INDEX_WAIT_ATTEMPTS:-30}

# Wait until the host has indexed the Event Grid functions (Flex Consumption indexes on first start).
for fn in $functions; do
  n=0
  until az rest --method get --only-show-errors \
      --url "${AZURE_FUNCTION_APP_ID}/functions/${fn}?api-version=2024-04-01" >/dev/null 2>&1; do
    n=$((n + 1))
    if [ "$n" -ge "$attempts" ]; then
      echo "postdeploy: function ${fn} is not indexed after ${attempts} tries; check the app's logs" >&2
      exit 1
    fi
    echo "postdeploy: waiting for function ${fn} to be indexed (${n}/${attempts})"
    sleep 10
  done
done

az deployment sub create \
  --only-show-errors \
  --subscription "${AZURE_SUBSCRIPTION_ID}" \
  --name "remediator-events-${AZURE_ENV_NAME}" \
  --location "${AZURE_LOCATION}" \
  --template-file "${here}/../events.bicep" \
  --parameters \
    eventWiring="${EVENT_WIRING}" \
    functionAppId="${AZURE_FUNCTION_APP_ID}" \
    deadLetterStorageAccountId="${DEADLETTER_STORAGE_ACCOUNT_ID}" \
    deadLetterContainerName="${DEADLETTER_CONTAINER_NAME}" \
  --output none

echo "postdeploy: Event Grid subscriptions are in place for: ${EVENT_SUBSCRIPTION_IDS}"
