# Event Grid wiring per managed subscription: the two system topics (reused when one already exists for the
# source), their dead-letter grants, and - with create_event_subscriptions, after the code is deployed - the two
# event subscriptions. Mirrors infra/events/*.bicep and infra/events.bicep.
#
# Why azapi here: Event Grid creates a system topic in the subscription that holds its source (learn.microsoft.com
# event-grid/system-topics), and these are MANY subscriptions listed in the config. azurerm creates
# azurerm_eventgrid_system_topic(_event_subscription) only in its provider's subscription, and Terraform cannot
# create provider configurations in a for_each; azapi_resource takes the parent id, so one module reaches every
# subscription the config lists. Everything in the app's subscription stays azurerm.

resource "azapi_resource" "events_group" {
  for_each  = local.events_groups
  type      = "Microsoft.Resources/resourceGroups@2024-03-01"
  parent_id = "/subscriptions/${each.key}"
  name      = local.events_resource_group_name
  location  = var.location
  tags      = local.tags
  body      = {}
}

resource "azapi_resource" "resources_topic" {
  for_each  = local.created_resources_topics
  type      = "Microsoft.EventGrid/systemTopics@2022-06-15"
  parent_id = azapi_resource.events_group[each.key].id
  name      = local.resources_topic_name
  location  = "global"
  tags      = local.tags

  identity {
    type = "SystemAssigned"
  }

  body = {
    properties = {
      source    = "/subscriptions/${each.key}"
      topicType = "Microsoft.Resources.Subscriptions"
    }
  }
}

resource "azapi_resource" "policy_topic" {
  for_each  = local.created_policy_topics
  type      = "Microsoft.EventGrid/systemTopics@2022-06-15"
  parent_id = azapi_resource.events_group[each.key].id
  name      = local.policy_topic_name
  location  = "global"
  tags      = local.tags

  identity {
    type = "SystemAssigned"
  }

  body = {
    properties = {
      source    = "/subscriptions/${each.key}"
      topicType = "Microsoft.PolicyInsights.PolicyStates"
    }
  }
}

locals {
  topics = {
    for sub, wiring in local.event_wiring : sub => {
      resources = wiring.resources != null ? {
        id           = "/subscriptions/${sub}/resourceGroups/${wiring.resources.resourceGroup}/providers/Microsoft.EventGrid/systemTopics/${wiring.resources.name}"
        principal_id = wiring.resources.principalId
        } : {
        id           = azapi_resource.resources_topic[sub].id
        principal_id = azapi_resource.resources_topic[sub].identity[0].principal_id
      }
      policy = wiring.policy != null ? {
        id           = "/subscriptions/${sub}/resourceGroups/${wiring.policy.resourceGroup}/providers/Microsoft.EventGrid/systemTopics/${wiring.policy.name}"
        principal_id = wiring.policy.principalId
        } : {
        id           = azapi_resource.policy_topic[sub].id
        principal_id = azapi_resource.policy_topic[sub].identity[0].principal_id
      }
    }
  }
  topic_identities = merge(
    { for sub, topic in local.topics : "${sub}/resources" => topic.resources.principal_id },
    { for sub, topic in local.topics : "${sub}/policy" => topic.policy.principal_id },
  )

  dead_letter = {
    identity = { type = "SystemAssigned" }
    deadLetterDestination = {
      endpointType = "StorageBlob"
      properties = {
        resourceId        = azurerm_storage_account.host.id
        blobContainerName = local.dead_letter_container_name
      }
    }
  }
  retry_policy = {
    maxDeliveryAttempts      = 30
    eventTimeToLiveInMinutes = 1440
  }

  # The same filters as infra/events/event-subscriptions.bicep (tests/unit/infra/test_parity.py compares them).
  cluster_writes_filter = {
    includedEventTypes = ["Microsoft.Resources.ResourceWriteSuccess"]
    advancedFilters = [
      {
        operatorType = "StringIn"
        key          = "data.operationName"
        values       = ["Microsoft.ContainerService/managedClusters/write"]
      },
    ]
  }
  policy_states_filter = {
    includedEventTypes = ["Microsoft.PolicyInsights.PolicyStateCreated", "Microsoft.PolicyInsights.PolicyStateChanged"]
    advancedFilters = [
      {
        operatorType = "StringContains"
        key          = "Subject"
        values       = ["/providers/Microsoft.ContainerService/managedClusters/"]
      },
    ]
  }
}

# Lets each system topic write dead-lettered events into the dead-letter container, and nowhere else.
resource "azurerm_role_assignment" "dead_letter_writer" {
  for_each           = local.topic_identities
  scope              = "${azurerm_storage_account.host.id}/blobServices/default/containers/${azurerm_storage_container.dead_letter.name}"
  role_definition_id = "/subscriptions/${data.azurerm_client_config.current.subscription_id}${local.role_ids.storageBlobDataContributor}"
  principal_id       = each.value
  principal_type     = "ServicePrincipal"
  description        = "aks-backup-remediator: Event Grid dead-lettering"
}

resource "azapi_resource" "cluster_writes" {
  for_each  = var.create_event_subscriptions ? local.topics : {}
  type      = "Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15"
  parent_id = each.value.resources.id
  name      = "aks-cluster-writes"

  body = {
    properties = {
      eventDeliverySchema = "EventGridSchema"
      destination = {
        endpointType = "AzureFunction"
        properties = {
          resourceId                    = "${azurerm_function_app_flex_consumption.app.id}/functions/on_cluster_write"
          maxEventsPerBatch             = 1
          preferredBatchSizeInKilobytes = 64
        }
      }
      filter                         = local.cluster_writes_filter
      retryPolicy                    = local.retry_policy
      deadLetterWithResourceIdentity = local.dead_letter
    }
  }

  depends_on = [azurerm_role_assignment.dead_letter_writer]
}

resource "azapi_resource" "policy_states" {
  for_each  = var.create_event_subscriptions ? local.topics : {}
  type      = "Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15"
  parent_id = each.value.policy.id
  name      = "aks-policy-states"

  body = {
    properties = {
      eventDeliverySchema = "EventGridSchema"
      destination = {
        endpointType = "AzureFunction"
        properties = {
          resourceId                    = "${azurerm_function_app_flex_consumption.app.id}/functions/on_policy_state"
          maxEventsPerBatch             = 1
          preferredBatchSizeInKilobytes = 64
        }
      }
      filter                         = local.policy_states_filter
      retryPolicy                    = local.retry_policy
      deadLetterWithResourceIdentity = local.dead_letter
    }
  }

  depends_on = [azurerm_role_assignment.dead_letter_writer]
}
