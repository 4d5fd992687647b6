# Least privilege for the app identity at the managed scopes, on the backup storage accounts and (optionally) at
# management groups, plus the built-in Policy 1/2 audits. Mirrors infra/access/*.bicep.

locals {
  role_ids = { for key, guid in local.roles : key => "/providers/Microsoft.Authorization/roleDefinitions/${guid}" }

  # scope-roles.bicep / scope-roles-rg.bicep / management-group-access.bicep: Reader always, Kubernetes Extension
  # Contributor in install mode, Resource Policy Contributor in policy-task mode.
  control_plane_roles = concat(
    ["reader"],
    local.mode == "install" ? ["kubernetesExtensionContributor"] : [],
    local.mode == "policy-task" ? ["resourcePolicyContributor"] : [],
  )
  managed_scopes = merge(
    { for sub in local.scope_subscriptions : "sub/${sub}" => "/subscriptions/${sub}" },
    { for key, group in local.scope_resource_groups : "rg/${key}" => "/subscriptions/${group.subscriptionId}/resourceGroups/${group.name}" },
    { for mg in local.scope_management_group : "mg/${mg}" => "/providers/Microsoft.Management/managementGroups/${mg}" },
  )
  # Per-resource-group variant (control-plane-rg.bicep): listed subscriptions keep Reader only; the write roles go
  # to each control-plane resource group (local.control_plane_group_pairs).
  scope_role_pairs = {
    for pair in setproduct(keys(local.managed_scopes), local.control_plane_roles) : "${pair[0]}/${pair[1]}" => {
      scope = local.managed_scopes[pair[0]]
      role  = pair[1]
    } if !local.per_resource_group_writes || !startswith(pair[0], "sub/") || pair[1] == "reader"
  }
  control_plane_group_pairs = {
    for pair in setproduct(keys(local.control_plane_resource_groups), [for role in local.control_plane_roles : role if role != "reader"]) : "${pair[0]}/${pair[1]}" => {
      scope = "/subscriptions/${local.control_plane_resource_groups[pair[0]].subscriptionId}/resourceGroups/${local.control_plane_resource_groups[pair[0]].name}"
      role  = pair[1]
    }
  }

  # storage-access.bicep: both halves are needed (a write is checked against @Request, a delete against @Resource).
  # remediation.grantScope container: the grant goes on the container, plus Storage Blob Delegator on the account.
  grantable_roles          = local.grant_scope == "container" ? "${local.roles.storageBlobDataContributor}, ${local.roles.storageBlobDelegator}" : local.roles.storageBlobDataContributor
  grant_condition          = "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${local.grantable_roles}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'})) AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${local.grantable_roles}}))"
  install_storage_accounts = local.mode == "install" ? local.storage_accounts : {}
  grant_storage_accounts   = local.mode == "install" && local.grant_storage_access ? local.storage_accounts : {}

  audits = {
    "aks-backup-p1-audit" = {
      definition   = local.policies.extensionInstalledAudit
      display_name = "AKS backup: Azure Backup extension installed (audit, aks-backup-remediator)"
    }
    "aks-backup-p2-audit" = {
      definition   = local.policies.backupEnabledAudit
      display_name = "AKS backup: Azure Backup enabled (audit, aks-backup-remediator)"
    }
  }
  audit_description = "Assigned by aks-backup-remediator (docs/deploy.md, \"Audit policies\"). Audit only: no identity, no remediation."
  audit_subscriptions = {
    for pair in setproduct(tolist(local.scope_subscriptions), keys(local.audits)) : "${pair[0]}/${pair[1]}" => { subscription = pair[0], audit = pair[1] } if local.audit_policies
  }
  audit_resource_groups = {
    for pair in setproduct(keys(local.scope_resource_groups), keys(local.audits)) : "${pair[0]}/${pair[1]}" => { group = local.scope_resource_groups[pair[0]], audit = pair[1] } if local.audit_policies
  }
  audit_management_groups = {
    for pair in setproduct(tolist(local.scope_management_group), keys(local.audits)) : "${pair[0]}/${pair[1]}" => { management_group = pair[0], audit = pair[1] } if local.audit_policies
  }
}

resource "azurerm_role_assignment" "scope" {
  for_each           = local.scope_role_pairs
  scope              = each.value.scope
  role_definition_id = "${startswith(each.value.scope, "/providers/") ? "" : "/subscriptions/${split("/", each.value.scope)[2]}"}${local.role_ids[each.value.role]}"
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
  description        = "aks-backup-remediator: ${each.value.role == "reader" ? "read clusters, extensions and storage accounts; Resource Graph" : each.value.role == "kubernetesExtensionContributor" ? "install the azure-aks-backup cluster extension" : "create policy remediation tasks (policy-task mode)"}"
}

resource "azurerm_role_assignment" "control_plane_group" {
  for_each           = local.control_plane_group_pairs
  scope              = each.value.scope
  role_definition_id = "/subscriptions/${split("/", each.value.scope)[2]}${local.role_ids[each.value.role]}"
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
  description        = "aks-backup-remediator: ${each.value.role == "kubernetesExtensionContributor" ? "install the azure-aks-backup cluster extension" : "create policy remediation tasks (policy-task mode)"} (per-resource-group variant)"
}

# The container-writer custom role is created ONCE by an administrator (docs/deploy.md, "Custom role") and
# referenced by id, exactly as in the Bicep: no roleDefinitions/write for the deployer, no replication lag.
resource "azurerm_role_assignment" "container_writer" {
  for_each           = local.install_storage_accounts
  scope              = each.value.id
  role_definition_id = "/subscriptions/${each.value.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${local.deployment.containerWriterRoleId}"
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
  description        = "aks-backup-remediator: create backup blob containers"
}

resource "azurerm_role_assignment" "grant_delegate" {
  for_each           = local.grant_storage_accounts
  scope              = each.value.id
  role_definition_id = "/subscriptions/${each.value.subscriptionId}${local.role_ids.roleBasedAccessControlAdministrator}"
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
  description        = "aks-backup-remediator: grant Storage Blob Data Contributor to backup extension identities only"
  condition          = local.grant_condition
  condition_version  = "2.0"
}

# ---- wiring that follows the scope (management-group-access.bicep): the timer's wiring step creates the system
# topics and event subscriptions of subscriptions that join a managed management group ----

resource "azurerm_role_assignment" "event_subscription_contributor" {
  for_each           = local.event_wiring_management_groups
  scope              = "/providers/Microsoft.Management/managementGroups/${each.value}"
  role_definition_id = local.role_ids.eventGridEventSubscriptionContributor
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
  description        = "aks-backup-remediator: event subscriptions of subscriptions that join this management group"
}

resource "azurerm_role_assignment" "event_wiring" {
  for_each           = local.event_wiring_management_groups
  scope              = "/providers/Microsoft.Management/managementGroups/${each.value}"
  role_definition_id = "/providers/Microsoft.Authorization/roleDefinitions/${local.event_wiring_role_id}"
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
  description        = "aks-backup-remediator: system topics (and their resource group) of subscriptions that join this management group"
}

# ---- built-in audits, AuditIfNotExists: no identity, no remediation ----

resource "azurerm_subscription_policy_assignment" "audit" {
  for_each             = local.audit_subscriptions
  name                 = each.value.audit
  subscription_id      = "/subscriptions/${each.value.subscription}"
  policy_definition_id = "/providers/Microsoft.Authorization/policyDefinitions/${local.audits[each.value.audit].definition}"
  display_name         = local.audits[each.value.audit].display_name
  description          = local.audit_description
  enforce              = true
  parameters           = jsonencode({ effect = { value = "AuditIfNotExists" } })
}

resource "azurerm_resource_group_policy_assignment" "audit" {
  for_each             = local.audit_resource_groups
  name                 = each.value.audit
  resource_group_id    = "/subscriptions/${each.value.group.subscriptionId}/resourceGroups/${each.value.group.name}"
  policy_definition_id = "/providers/Microsoft.Authorization/policyDefinitions/${local.audits[each.value.audit].definition}"
  display_name         = local.audits[each.value.audit].display_name
  description          = local.audit_description
  enforce              = true
  parameters           = jsonencode({ effect = { value = "AuditIfNotExists" } })
}

resource "azurerm_management_group_policy_assignment" "audit" {
  for_each             = local.audit_management_groups
  name                 = each.value.audit
  management_group_id  = "/providers/Microsoft.Management/managementGroups/${each.value.management_group}"
  policy_definition_id = "/providers/Microsoft.Authorization/policyDefinitions/${local.audits[each.value.audit].definition}"
  display_name         = local.audits[each.value.audit].display_name
  description          = local.audit_description
  enforce              = true
  parameters           = jsonencode({ effect = { value = "AuditIfNotExists" } })
}
