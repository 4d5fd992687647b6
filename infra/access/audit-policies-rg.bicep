// The built-in audits at one managed resource group (config scope.resourceGroups): Policy 1 "[Preview]: Azure Backup Extension should be
// installed in AKS clusters" and Policy 2 "[Preview]: Azure Backup should be enabled for AKS clusters"
// (infra/policies.json). Both are AuditIfNotExists: the assignment needs no identity and remediates nothing; it
// gives the portal's compliance view and the PolicyStateCreated/Changed events on_policy_state reacts to.
// Fixed names, so several environments in one resource group converge on one assignment per definition.
targetScope = 'resourceGroup'

param extensionInstalledAuditId string
param backupEnabledAuditId string

var assignments = [
  {
    name: 'aks-backup-p1-audit'
    definition: extensionInstalledAuditId
    displayName: 'AKS backup: Azure Backup extension installed (audit, aks-backup-remediator)'
  }
  {
    name: 'aks-backup-p2-audit'
    definition: backupEnabledAuditId
    displayName: 'AKS backup: Azure Backup enabled (audit, aks-backup-remediator)'
  }
]

resource audits 'Microsoft.Authorization/policyAssignments@2024-04-01' = [for assignment in assignments: {
  name: assignment.name
  properties: {
    displayName: assignment.displayName
    description: 'Assigned by aks-backup-remediator (docs/deploy.md, "Audit policies"). Audit only: no identity, no remediation.'
    policyDefinitionId: tenantResourceId('Microsoft.Authorization/policyDefinitions', assignment.definition)
    enforcementMode: 'Default'
    parameters: {
      effect: {
        value: 'AuditIfNotExists'
      }
    }
  }
}]
