// Grants on ONE backup storage account (the account the config maps a region to):
// - the custom container-writer role, to create azure-aks-backup-<cluster> containers;
// - Role Based Access Control Administrator with an ABAC condition: the remediator may add (or remove) role
//   assignments on this account only for Storage Blob Data Contributor and only to service principals (the
//   backup extension's identity), exactly the grant the built-in DINE policy makes. With
//   remediation.grantScope 'container' (docs/security.md) the product scopes that grant to the cluster's own
//   container and adds Storage Blob Delegator on the account, so the condition then allows that role too.
//   In protect mode (param protect) the condition also allows Storage Blob Data Reader: the backup vault's
//   identity reads the backups it manages (Microsoft's CLI grants it, protection_facts.md §1.4).
//   A condition cannot constrain the SCOPE of the assignment (its attributes are the role, the principal and
//   the principal type), so container scope is the product's choice, not something this condition enforces.

param storageAccountName string
param principalId string

@description('GUID of the container-writer custom role (access/container-writer-role.bicep).')
param containerWriterRoleGuid string

@description('remediation.grantStorageAccess of the config: false means the operator grants the extension identities themselves.')
param grantStorageAccess bool = true

@description('remediation.grantScope of the config: account (Storage Blob Data Contributor on the account) or container (on the backup container, plus Storage Blob Delegator on the account).')
@allowed([
  'account'
  'container'
])
param grantScope string = 'account'

@description('remediation.mode is protect: the backup vault identity also gets Storage Blob Data Reader on the account (the CLI grants it; infra/protect-roles.json).')
param protect bool = false

var roles = loadJsonContent('../roles.json')
var protectRoles = loadJsonContent('../protect-roles.json')

// The roles the remediator may grant (and revoke) on this account.
var grantableRoles = (grantScope == 'container') ? '${roles.storageBlobDataContributor}, ${roles.storageBlobDelegator}' : roles.storageBlobDataContributor

// In protect mode also the vault identity's Storage Blob Data Reader.
var grantableHere = protect ? '${grantableRoles}, ${protectRoles.storageBlobDataReader}' : grantableRoles

// Both halves are needed: a write is checked against @Request, a delete against @Resource.
var grantCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${grantableHere}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'})) AND ((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${grantableHere}}))'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource containerWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, containerWriterRoleGuid)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', containerWriterRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: create backup blob containers'
  }
}

resource grantDelegate 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantStorageAccess) {
  name: guid(storage.id, principalId, roles.roleBasedAccessControlAdministrator)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.roleBasedAccessControlAdministrator)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: grant Storage Blob Data Contributor to backup extension identities only'
    condition: grantCondition
    conditionVersion: '2.0'
  }
}
