# The app resource group: identity, host storage, monitoring, outcome topic, Flex Consumption app, alerts,
# workbook, and the grants inside it. Mirrors infra/app/*.bicep resource by resource.

resource "azurerm_resource_group" "app" {
  name     = local.app_resource_group_name
  location = var.location
  tags     = local.tags

  lifecycle {
    precondition {
      condition     = local.token == substr(sha256("${lower(data.azurerm_client_config.current.subscription_id)}/${var.environment_name}/${var.location}"), 0, 13)
      error_message = "The deployment file was prepared for another subscription, environment name or location: run python -m tools.deploy prepare --subscription <this subscription> --env-name ${var.environment_name} --location ${var.location}."
    }
    precondition {
      condition     = length(regexall("00000000-0000-0000-0000-000000000000", jsonencode(local.deployment.config))) == 0
      error_message = "The config still holds the placeholder subscription GUID: edit infra/remediator.config.yaml and run python -m tools.deploy prepare again."
    }
    precondition {
      condition     = !contains(["Standard_ZRS", "Standard_GZRS"], local.host_storage_sku) || contains(local.regions.zrsRegions, var.location)
      error_message = "Host storage ${local.host_storage_sku} does not exist in ${var.location} (infra/regions.json): leave hostStorageSku empty to get ZRS where it exists and LRS elsewhere."
    }
    precondition {
      condition     = local.mode != "install" || can(regex("^[0-9a-fA-F-]{36}$", local.deployment.containerWriterRoleId))
      error_message = "install mode needs the container-writer custom role id (created once by an administrator; docs/deploy.md, 'Custom role')."
    }
  }
}

resource "azurerm_user_assigned_identity" "app" {
  name                = "id-${local.prefix}"
  location            = var.location
  resource_group_name = azurerm_resource_group.app.name
  tags                = local.tags
}

resource "azurerm_storage_account" "host" {
  #checkov:skip=CKV_AZURE_33:Queue service logging goes to the storage account's diagnostic settings, not configured here; every queue operation the app makes is journaled and traced (telemetry).
  #checkov:skip=CKV_AZURE_35:The Flex app runs without VNet integration and Event Grid dead-letters from outside, so the default network action stays Allow; access is Entra-only (shared keys off). Private endpoints: docs/deploy.md "Hardening".
  #checkov:skip=CKV_AZURE_43:The name is "staksbr" plus a 13-character lower-case hex token (20 lower-case letters and digits); checkov cannot resolve the local.
  #checkov:skip=CKV_AZURE_59:The Flex app runs without VNet integration and Event Grid dead-letters from outside; access is Entra-only (shared keys off). Private endpoints: docs/deploy.md "Hardening".
  #checkov:skip=CKV_AZURE_206:ZRS (LRS where the region has no zones) on purpose: the app runs in one region and the sweep re-derives every cluster's state; set hostStorageSku Standard_GRS/GZRS to keep the journal history.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys with infrastructure encryption; customer-managed keys add a Key Vault the app does not otherwise need (docs/deploy.md "Hardening").
  #checkov:skip=CKV2_AZURE_33:No private endpoint: the app has no VNet integration (docs/deploy.md "Hardening"); access is Entra-only.
  #checkov:skip=CKV2_AZURE_38:Soft delete is on for blobs and containers (7 days); the check wants a retention this template chooses per environment.
  #checkov:skip=CKV2_AZURE_41:Shared keys are disabled, so no SAS can be signed with them; the SAS expiration policy has nothing to govern.
  #checkov:skip=CKV_AZURE_244:Local users are disabled (local_user_enabled = false); the check does not read the attribute on this provider version.
  name                              = "staksbr${local.token}"
  resource_group_name               = azurerm_resource_group.app.name
  location                          = var.location
  tags                              = local.tags
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = trimprefix(local.host_storage_sku, "Standard_")
  access_tier                       = "Hot"
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  cross_tenant_replication_enabled  = false
  default_to_oauth_authentication   = true
  local_user_enabled                = false
  sftp_enabled                      = false
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  public_network_access_enabled     = true
  infrastructure_encryption_enabled = true

  network_rules {
    default_action = "Allow"
    bypass         = ["AzureServices"]
  }

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }
}

resource "azurerm_storage_container" "deployment" {
  #checkov:skip=CKV2_AZURE_21:Only the app's own identity reads this container (the Flex deployment package); Storage analytics logging needs shared-key era classic logs or diagnostic settings, a hardening option (docs/deploy.md).
  name                  = local.deployment_container_name
  storage_account_id    = azurerm_storage_account.host.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "dead_letter" {
  #checkov:skip=CKV2_AZURE_21:Only Event Grid (writes) and operators (reads) use the dead-letter container; diagnostic settings on the account are a hardening option (docs/deploy.md).
  name                  = local.dead_letter_container_name
  storage_account_id    = azurerm_storage_account.host.id
  container_access_type = "private"
}

resource "azurerm_storage_queue" "work" {
  for_each           = toset([local.work_queue_name, "${local.work_queue_name}-poison", "${local.work_queue_name}-poison-poison"])
  name               = each.value
  storage_account_id = azurerm_storage_account.host.id
}

resource "azurerm_storage_table" "journal" {
  #checkov:skip=CKV2_AZURE_20:The journal table is read by the app's own identity; the journal itself records every decision and write. Diagnostic settings on the account are a hardening option (docs/deploy.md).
  name               = local.journal_table_name
  storage_account_id = azurerm_storage_account.host.id
}

resource "azurerm_log_analytics_workspace" "app" {
  name                = "log-${local.prefix}"
  location            = var.location
  resource_group_name = azurerm_resource_group.app.name
  tags                = local.tags
  sku                 = "PerGB2018"
  retention_in_days   = 30
}

resource "azurerm_application_insights" "app" {
  name                          = "appi-${local.prefix}"
  location                      = var.location
  resource_group_name           = azurerm_resource_group.app.name
  tags                          = local.tags
  application_type              = "web"
  workspace_id                  = azurerm_log_analytics_workspace.app.id
  local_authentication_disabled = true
}

resource "azurerm_eventgrid_topic" "outcomes" {
  #checkov:skip=CKV_AZURE_193:The app publishes without VNet integration, so the topic keeps its public endpoint; local (key) auth is disabled, publishers need EventGrid Data Sender.
  name                          = "evgt-out-${local.token}"
  location                      = var.location
  resource_group_name           = azurerm_resource_group.app.name
  tags                          = local.tags
  input_schema                  = var.outcome_topic_input_schema
  local_auth_enabled            = false
  public_network_access_enabled = true

  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_service_plan" "app" {
  #checkov:skip=CKV_AZURE_225:Zone redundancy is a per-region Flex Consumption option; missed events are recovered by Event Grid retries and the sweep.
  #checkov:skip=CKV_AZURE_212:Flex Consumption scales per trigger from zero; failover comes from Event Grid retries, queue redelivery and the timer sweep, not from standing instances.
  name                = "plan-${local.prefix}"
  location            = var.location
  resource_group_name = azurerm_resource_group.app.name
  tags                = local.tags
  os_type             = "Linux"
  sku_name            = "FC1"
}

resource "azurerm_function_app_flex_consumption" "app" {
  name                = local.function_app_name
  location            = var.location
  resource_group_name = azurerm_resource_group.app.name
  service_plan_id     = azurerm_service_plan.app.id
  tags                = merge(local.tags, { "azd-service-name" = "remediator" })

  https_only                                     = true
  client_certificate_enabled                     = false
  public_network_access_enabled                  = true
  webdeploy_publish_basic_authentication_enabled = false

  storage_container_type            = "blobContainer"
  storage_container_endpoint        = "${azurerm_storage_account.host.primary_blob_endpoint}${azurerm_storage_container.deployment.name}"
  storage_authentication_type       = "UserAssignedIdentity"
  storage_user_assigned_identity_id = azurerm_user_assigned_identity.app.id

  runtime_name           = "python"
  runtime_version        = "3.11"
  maximum_instance_count = var.maximum_instance_count
  instance_memory_in_mb  = var.instance_memory_mb

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.app.id]
  }

  site_config {
    minimum_tls_version = "1.2"
    http2_enabled       = true
    # APPLICATIONINSIGHTS_CONNECTION_STRING: azurerm owns this app setting through this argument.
    application_insights_connection_string = azurerm_application_insights.app.connection_string
  }

  # App Service authentication (Entra ID), as authSettings in infra/app/function.bicep (the reasons for each
  # setting are there; tests/unit/infra/test_parity.py compares the two).
  dynamic "auth_settings_v2" {
    for_each = local.entra_client_id != "" ? [local.entra_client_id] : []
    content {
      auth_enabled           = true
      require_authentication = true
      unauthenticated_action = "Return401"
      excluded_paths         = ["/runtime/webhooks/eventgrid", "/runtime/webhooks/EventGrid", "/api/health"]
      require_https          = true

      active_directory_v2 {
        client_id            = auth_settings_v2.value
        tenant_auth_endpoint = "https://login.microsoftonline.com/${data.azurerm_client_config.current.tenant_id}/v2.0"
        allowed_audiences    = ["api://${auth_settings_v2.value}", auth_settings_v2.value]
      }

      login {
        token_store_enabled = false
      }
    }
  }

  # The same app settings as infra/app/function.bicep (tests/unit/infra/test_parity.py compares them).
  app_settings = {
    # host storage, identity-based (no connection string, shared keys are disabled)
    "AzureWebJobsStorage__accountName"     = azurerm_storage_account.host.name
    "AzureWebJobsStorage__queueServiceUri" = azurerm_storage_account.host.primary_queue_endpoint
    "AzureWebJobsStorage__tableServiceUri" = azurerm_storage_account.host.primary_table_endpoint
    "AzureWebJobsStorage__credential"      = "managedidentity"
    "AzureWebJobsStorage__clientId"        = azurerm_user_assigned_identity.app.client_id
    # identity used by DefaultAzureCredential
    "AZURE_CLIENT_ID" = azurerm_user_assigned_identity.app.client_id
    # telemetry, Entra-authenticated (local auth is disabled on the component)
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING" = "ClientId=${azurerm_user_assigned_identity.app.client_id};Authorization=AAD"
    # the product (remediator/core/settings.py)
    "REMEDIATOR_CONFIG_JSON"                 = jsonencode(local.deployment.config)
    "REMEDIATOR_TENANT_ID"                   = data.azurerm_client_config.current.tenant_id
    "REMEDIATOR_ARM_ENDPOINT"                = local.arm_endpoint
    "REMEDIATOR_WORK_QUEUE"                  = local.work_queue_name
    "REMEDIATOR_JOURNAL_TABLE"               = local.journal_table_name
    "REMEDIATOR_OUTCOME_TOPIC_ENDPOINT"      = azurerm_eventgrid_topic.outcomes.endpoint
    "REMEDIATOR_INLINE_BUDGET_SECONDS"       = var.inline_budget_seconds
    "REMEDIATOR_MAX_ATTEMPTS"                = var.max_attempts
    "REMEDIATOR_MAX_WAIT_SECONDS"            = var.max_wait_seconds
    "REMEDIATOR_EVENT_MAX_AGE_SECONDS"       = var.event_max_age_seconds
    "REMEDIATOR_EVENT_MAX_SKEW_SECONDS"      = var.event_max_skew_seconds
    "REMEDIATOR_SCOPE_REMEDIATIONS_PER_HOUR" = var.scope_remediations_per_hour
    # 'entra' only with auth_settings_v2 below: only then are the X-MS-CLIENT-PRINCIPAL* headers trustworthy
    "REMEDIATOR_HTTP_AUTH" = local.entra_client_id != "" ? "entra" : "function-key"
    "REMEDIATOR_EVENT_WIRING" = local.wire_new_subscriptions ? jsonencode({
      functionAppId  = "${azurerm_resource_group.app.id}/providers/Microsoft.Web/sites/${local.function_app_name}"
      resourceGroup  = local.events_resource_group_name
      location       = var.location
      resourcesTopic = local.resources_topic_name
      policyTopic    = local.policy_topic_name
    }) : ""
    # binding expressions in function_app.py
    "SWEEP_SCHEDULE" = var.sweep_schedule
  }

  depends_on = [
    azurerm_role_assignment.host_blob,
    azurerm_role_assignment.host_queue,
    azurerm_role_assignment.host_table,
    azurerm_role_assignment.telemetry,
    azurerm_role_assignment.outcome_sender,
  ]
}

# No publishing with basic (user/password) credentials over FTP: azurerm has no argument for the ftp policy of a
# Flex app (webdeploy_publish_basic_authentication_enabled covers scm), so this one child resource is azapi.
resource "azapi_update_resource" "ftp_basic_auth_off" {
  type      = "Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01"
  parent_id = azurerm_function_app_flex_consumption.app.id
  name      = "ftp"
  body = {
    properties = {
      allow = false
    }
  }
}

# ---- grants inside the app resource group (infra/app/app-access.bicep) ----

resource "azurerm_role_assignment" "host_blob" {
  scope              = azurerm_storage_account.host.id
  role_definition_id = "/subscriptions/${data.azurerm_client_config.current.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/${local.roles.storageBlobDataOwner}"
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
}

resource "azurerm_role_assignment" "host_queue" {
  scope              = azurerm_storage_account.host.id
  role_definition_id = "/subscriptions/${data.azurerm_client_config.current.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/${local.roles.storageQueueDataContributor}"
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
}

resource "azurerm_role_assignment" "host_table" {
  scope              = azurerm_storage_account.host.id
  role_definition_id = "/subscriptions/${data.azurerm_client_config.current.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/${local.roles.storageTableDataContributor}"
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
}

resource "azurerm_role_assignment" "telemetry" {
  scope              = azurerm_application_insights.app.id
  role_definition_id = "/subscriptions/${data.azurerm_client_config.current.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/${local.roles.monitoringMetricsPublisher}"
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
}

resource "azurerm_role_assignment" "outcome_sender" {
  scope              = azurerm_eventgrid_topic.outcomes.id
  role_definition_id = "/subscriptions/${data.azurerm_client_config.current.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/${local.roles.eventGridDataSender}"
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
}

# ---- alerts (infra/app/alerts.bicep) ----

resource "azurerm_monitor_action_group" "alerts" {
  name                = "${local.prefix}-ag"
  resource_group_name = azurerm_resource_group.app.name
  location            = "global"
  short_name          = "aksbackup"
  enabled             = true
  tags                = local.tags

  dynamic "email_receiver" {
    for_each = { for i, email in var.alert_emails : i => email }
    content {
      name                    = "email-${email_receiver.key}"
      email_address           = email_receiver.value
      use_common_alert_schema = true
    }
  }
}

locals {
  # The same rules as infra/app/alerts.bicep (test_parity.py compares names, severities and queries).
  alert_rules = {
    "poison-queue-not-empty" = {
      severity    = 1
      description = "A work item failed 5 dequeues and was moved to the poison queue (journaled by ${var.poison_function_name})."
      query       = "requests | where operation_Name =~ '${var.poison_function_name}' or name =~ '${var.poison_function_name}'"
    }
    "poison-poison-queue-not-empty" = {
      severity    = 0
      description = "The poison-queue function ${var.poison_function_name} failed; after 5 failures the host moves the item to ${local.work_queue_name}-poison-poison, which nothing drains. Inspect that queue (docs/operations.md)."
      query       = "union (traces | where message contains '${local.work_queue_name}-poison-poison'), (requests | where (operation_Name =~ '${var.poison_function_name}' or name =~ '${var.poison_function_name}') and success == false)"
    }
    "gave-up-outcomes" = {
      severity    = 2
      description = "The remediator gave up on a cluster (outcome gave_up, event AksBackupRemediator.GaveUp)."
      query       = "union traces, customEvents | where message contains 'gave_up' or message contains 'gave up' or message contains 'AksBackupRemediator.GaveUp' or name == 'AksBackupRemediator.GaveUp' or tostring(customDimensions.outcome) == 'gave_up'"
    }
    "function-failures" = {
      severity    = 2
      description = "A function invocation failed."
      query       = "requests | where success == false"
    }
  }
}

resource "azurerm_monitor_scheduled_query_rules_alert_v2" "alerts" {
  for_each                = local.alert_rules
  name                    = "${local.prefix}-${each.key}"
  resource_group_name     = azurerm_resource_group.app.name
  location                = var.location
  tags                    = local.tags
  display_name            = "${local.prefix}: ${each.key}"
  description             = each.value.description
  severity                = each.value.severity
  enabled                 = true
  scopes                  = [azurerm_application_insights.app.id]
  evaluation_frequency    = "PT5M"
  window_duration         = "PT5M"
  auto_mitigation_enabled = true

  criteria {
    query                   = each.value.query
    time_aggregation_method = "Count"
    operator                = "GreaterThan"
    threshold               = 0

    failing_periods {
      number_of_evaluation_periods             = 1
      minimum_failing_periods_to_trigger_alert = 1
    }
  }

  action {
    action_groups = [azurerm_monitor_action_group.alerts.id]
  }
}

# ---- workbook (infra/app/workbook.bicep): the same .kql files ----

resource "azurerm_application_insights_workbook" "remediator" {
  name                = local.deployment.workbookName
  resource_group_name = azurerm_resource_group.app.name
  location            = var.location
  tags                = local.tags
  display_name        = "AKS backup remediator (${var.environment_name})"
  category            = "workbook"
  source_id           = lower(azurerm_application_insights.app.id)
  data_json = jsonencode({
    version = "Notebook/1.0"
    items = concat([
      {
        type    = 1
        name    = "title"
        content = { json = "## ${local.workbook.title}\nFrom the remediator's OpenTelemetry spans and metrics (docs/deploy.md, \"Workbook\")." }
      }
      ], [for item in local.workbook.items : {
        type = 3
        name = item.name
        content = {
          version       = "KqlItem/1.0"
          title         = item.title
          query         = file("${path.module}/../workbook/${item.query}")
          size          = 0
          queryType     = 0
          resourceType  = "microsoft.insights/components"
          visualization = item.visualization
          timeContext   = { durationMs = 604800000 }
        }
    }])
    fallbackResourceIds = [azurerm_application_insights.app.id]
  })
}
