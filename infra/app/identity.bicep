// The user-assigned identity the Functions app runs as. Every grant in this deployment goes to it, so the
// remediator's reach can be audited by listing one principal's role assignments.

param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
