# The same outputs as infra/main.bicep (names in lower case), for the docs' commands and the first-run checks.
output "resource_group" {
  description = "The app's resource group (AZURE_RESOURCE_GROUP)."
  value       = azurerm_resource_group.app.name
}

output "function_app_name" {
  description = "The Functions app to deploy the code to (AZURE_FUNCTION_APP_NAME)."
  value       = azurerm_function_app_flex_consumption.app.name
}

output "function_app_id" {
  description = "Resource id of the Functions app (AZURE_FUNCTION_APP_ID)."
  value       = azurerm_function_app_flex_consumption.app.id
}

output "principal_id" {
  description = "Object id of the app's user-assigned identity (REMEDIATOR_PRINCIPAL_ID)."
  value       = azurerm_user_assigned_identity.app.principal_id
}

output "client_id" {
  description = "Client id of the app's user-assigned identity (REMEDIATOR_CLIENT_ID)."
  value       = azurerm_user_assigned_identity.app.client_id
}

output "mode" {
  description = "remediation.mode of the config (REMEDIATOR_MODE)."
  value       = local.mode
}

output "event_wiring" {
  description = "Per managed subscription, the system topics its events come from (EVENT_WIRING)."
  value       = { for sub, topic in local.topics : sub => { resources_topic_id = topic.resources.id, policy_topic_id = topic.policy.id } }
}

output "outcome_topic_endpoint" {
  description = "Endpoint of the outcome topic (OUTCOME_TOPIC_ENDPOINT)."
  value       = azurerm_eventgrid_topic.outcomes.endpoint
}

output "dead_letter_container" {
  description = "Where Event Grid dead-letters (DEADLETTER_STORAGE_ACCOUNT_ID / DEADLETTER_CONTAINER_NAME)."
  value       = "${azurerm_storage_account.host.id}/blobServices/default/containers/${local.dead_letter_container_name}"
}
