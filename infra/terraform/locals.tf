# Names, inputs and facts, each from the one file that holds them (the same files the Bicep loads).
data "azurerm_client_config" "current" {}

data "azurerm_subscription" "current" {}

locals {
  deployment = jsondecode(file(var.deployment_file))
  roles      = jsondecode(file("${path.module}/../roles.json"))
  policies   = jsondecode(file("${path.module}/../policies.json"))
  regions    = jsondecode(file("${path.module}/../regions.json"))
  workbook   = jsondecode(file("${path.module}/../workbook/items.json"))

  # Same names as infra/main.bicep.
  token                      = local.deployment.nameToken
  prefix                     = "aksbr-${var.environment_name}"
  work_queue_name            = "reconcile-work"
  journal_table_name         = "remediatorjournal"
  dead_letter_container_name = "eventgrid-deadletter"
  deployment_container_name  = "app-package-${local.token}"
  events_resource_group_name = "rg-${local.prefix}-events"
  resources_topic_name       = "evgt-${local.prefix}-arm"
  policy_topic_name          = "evgt-${local.prefix}-policy"
  app_resource_group_name    = "rg-${local.prefix}"
  function_app_name          = "func-${local.prefix}-${local.token}"

  tags = {
    "azd-env-name" = var.environment_name
    app            = "aks-backup-remediator"
  }

  mode                 = local.deployment.mode
  grant_storage_access = local.deployment.grantStorageAccess
  grant_scope          = try(local.deployment.grantScope, "account")
  audit_policies       = local.deployment.assignAuditPolicies
  # Options of issue 15 (docs/deploy.md), as in infra/main.bicep: App Service authentication (Entra ID) when an app
  # registration's client id is given; write roles per resource group instead of per listed subscription.
  entra_client_id               = try(local.deployment.entraClientId, "")
  control_plane_resource_groups = { for group in try(local.deployment.controlPlaneResourceGroups, []) : "${group.subscriptionId}/${group.name}" => group }
  per_resource_group_writes     = length(local.control_plane_resource_groups) > 0
  host_storage_sku              = local.deployment.hostStorageSku

  # The subscription deployment is one subscription; scope lists come from the config via the deployment file.
  scope_subscriptions    = toset(local.deployment.subscriptions)
  scope_resource_groups  = { for group in local.deployment.resourceGroups : "${group.subscriptionId}/${group.name}" => group }
  scope_management_group = toset(var.manage_management_groups ? local.deployment.managementGroups : [])
  storage_accounts       = { for account in local.deployment.storageAccounts : account.region => account }
  existing_topics        = local.deployment.existingSystemTopics

  # Per event subscription: the two system topics it feeds from, reused when one already exists for the source.
  event_wiring = {
    for subscription_id in local.deployment.eventSubscriptionIds : subscription_id => {
      resources = try(local.existing_topics[subscription_id]["Microsoft.Resources.Subscriptions"], null)
      policy    = try(local.existing_topics[subscription_id]["Microsoft.PolicyInsights.PolicyStates"], null)
    }
  }
  created_resources_topics = { for sub, wiring in local.event_wiring : sub => sub if wiring.resources == null }
  created_policy_topics    = { for sub, wiring in local.event_wiring : sub => sub if wiring.policy == null }
  events_groups            = { for sub, wiring in local.event_wiring : sub => sub if wiring.resources == null || wiring.policy == null }

  # Wiring that follows the scope (docs/deploy.md): on when the scope lists management groups and the Event Wiring
  # custom role exists (created once by an administrator; its id is a deployment input), as in infra/main.bicep.
  event_wiring_role_id   = try(local.deployment.eventWiringRoleId, "")
  wire_new_subscriptions = length(local.deployment.managementGroups) > 0 && local.event_wiring_role_id != ""
  # the groups this module grants the wiring roles at (none when manage_management_groups is off)
  event_wiring_management_groups = local.wire_new_subscriptions ? local.scope_management_group : toset([])

  # Bicep: environment().resourceManager without the trailing slash.
  arm_endpoint = trimsuffix(var.arm_endpoint, "/")
}
