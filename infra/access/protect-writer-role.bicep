// Custom role for protect mode (remediation.mode: protect), created ONCE by an administrator, like the
// container-writer role: exactly the writes the protect chain makes besides role assignments, and no delete.
// Built-ins are broader: Backup Contributor cannot create vaults yet can delete backup data and restore;
// Azure Kubernetes Service Contributor can change the cluster itself. Reads come from Reader.
// Actions (MicrosoftDocs/azure-docs@articles/role-based-access-control/resource-provider-operations.md):
//   backupVaults/write                       create the region's vault (preset)
//   backupVaults/backupPolicies/write        create the preset policy in it
//   backupVaults/backupInstances/write       create the cluster's backup instance (and re-PUT a wrong body)
//   backupVaults/backupInstances/sync/action re-sync an instance in ProtectionError (the repair)
//   backupVaults/validateForBackup/action    validateForBackup before the instance PUT
//   managedClusters/trustedAccessRoleBindings/write   bind the vault with backup-operator
//   subscriptions/resourceGroups/write       create the snapshot resource group (named in each subscription)
targetScope = 'subscription'

@description('Unique per deployment so several environments can coexist in one tenant.')
param roleNameSuffix string

@description('Scopes the role can be assigned at: the managed subscriptions (or management groups) and the subscriptions of the backup vaults.')
param assignableScopes array

resource role 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'aks-backup-remediator-protect-writer', roleNameSuffix)
  properties: {
    roleName: 'AKS Backup Remediator Protect Writer (${roleNameSuffix})'
    description: 'Create AKS backup vaults, policies and backup instances, validate and re-sync them, bind trusted access, create snapshot resource groups; no delete, no restore.'
    type: 'CustomRole'
    assignableScopes: assignableScopes
    permissions: [
      {
        actions: [
          'Microsoft.DataProtection/backupVaults/write'
          'Microsoft.DataProtection/backupVaults/backupPolicies/write'
          'Microsoft.DataProtection/backupVaults/backupInstances/write'
          'Microsoft.DataProtection/backupVaults/backupInstances/sync/action'
          'Microsoft.DataProtection/backupVaults/validateForBackup/action'
          'Microsoft.ContainerService/managedClusters/trustedAccessRoleBindings/write'
          'Microsoft.Resources/subscriptions/resourceGroups/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

@description('GUID of the custom role (the role definition name).')
output roleGuid string = role.name
