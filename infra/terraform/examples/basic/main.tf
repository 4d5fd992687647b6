# Example root module: the remediator in the subscription of the azurerm provider, driven by the same config
# file as the Bicep path. First:
#   python -m tools.deploy prepare --env-name aksbr-prod --location swedencentral \
#     --subscription <app subscription id> --container-writer-role-id <role guid>
# then, from this folder: terraform init && terraform apply; deploy the code (docs/deploy.md, "Terraform");
# then terraform apply -var create_event_subscriptions=true.
terraform {
  required_version = ">= 1.6.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.26.0, < 5.0.0"
    }
    azapi = {
      source  = "Azure/azapi"
      version = ">= 2.2.0, < 3.0.0"
    }
  }
}

provider "azurerm" {
  features {}
  subscription_id = var.subscription_id
  # The host storage account has shared keys disabled: data-plane calls must use Entra ID.
  storage_use_azuread = true
}

provider "azapi" {}

variable "subscription_id" {
  description = "The app's subscription (where the resource group, storage, app and topics are created)."
  type        = string
}

variable "create_event_subscriptions" {
  description = "Second apply, after the code is deployed: create the Event Grid subscriptions."
  type        = bool
  default     = false
}

module "remediator" {
  source = "../.."

  deployment_file            = "${path.root}/../../../generated/deployment.json"
  environment_name           = "aksbr-prod"
  location                   = "swedencentral"
  alert_emails               = []
  create_event_subscriptions = var.create_event_subscriptions
}

output "function_app_name" {
  description = "Deploy the code here (docs/deploy.md, 'Terraform')."
  value       = module.remediator.function_app_name
}

output "principal_id" {
  description = "The app identity's object id."
  value       = module.remediator.principal_id
}
