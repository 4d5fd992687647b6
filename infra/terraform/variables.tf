variable "deployment_file" {
  description = "Path of the deployment file written by `python -m tools.deploy prepare` from infra/remediator.config.yaml (the same file azd's preprovision hook writes for Bicep): the config the app gets, scope and storage lists, event subscriptions, system topics to reuse, host storage SKU, custom role id, audit switch."
  type        = string

  validation {
    condition     = can(jsondecode(file(var.deployment_file)).config.scope)
    error_message = "deployment_file must be the JSON written by `python -m tools.deploy prepare` (run it first; it also runs the preflight)."
  }
}

variable "environment_name" {
  description = "Environment name; seeds resource names exactly as azd's AZURE_ENV_NAME does for the Bicep (rg-aksbr-<name>, func-aksbr-<name>-<token>, ...)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,22}[A-Za-z0-9]$", var.environment_name))
    error_message = "environment_name: 2-24 letters, digits and hyphens, starting with a letter, not ending with a hyphen; '_', '.', '(' and ')' break the site, workspace, topic and action group names."
  }
}

variable "location" {
  description = "Region of the app resources (one that offers Flex Consumption with Python 3.11), e.g. swedencentral."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]+$", var.location))
    error_message = "location: the region's short name (lower-case letters and digits, e.g. swedencentral)."
  }
}

variable "sweep_schedule" {
  description = "NCRONTAB schedule (six fields, UTC) of the timer sweep (SWEEP_SCHEDULE). Default: hourly at minute 7."
  type        = string
  default     = "0 7 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.sweep_schedule))) == 6
    error_message = "sweep_schedule: six space-separated NCRONTAB fields (second minute hour day month weekday)."
  }
}

variable "alert_emails" {
  description = "E-mail addresses the alert action group notifies (empty: alerts fire without notification)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for email in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+$", email))])
    error_message = "alert_emails: every entry must be an e-mail address."
  }
}

variable "outcome_topic_input_schema" {
  description = "Schema of the outcome topic; must match what remediator/adapters/publisher.py sends."
  type        = string
  default     = "EventGridSchema"

  validation {
    condition     = contains(["EventGridSchema", "CloudEventSchemaV1_0"], var.outcome_topic_input_schema)
    error_message = "outcome_topic_input_schema: EventGridSchema or CloudEventSchemaV1_0."
  }
}

variable "poison_function_name" {
  description = "Name of the function bound to the poison queue (alert poison-queue-not-empty)."
  type        = string
  default     = "reconcile_poison"
}

variable "inline_budget_seconds" {
  description = "REMEDIATOR_INLINE_BUDGET_SECONDS: seconds an Event Grid invocation may reconcile inline (max 25)."
  type        = string
  default     = "20"

  validation {
    condition     = can(tonumber(var.inline_budget_seconds)) && tonumber(var.inline_budget_seconds) > 0 && tonumber(var.inline_budget_seconds) <= 25
    error_message = "inline_budget_seconds: a number of seconds in (0, 25]."
  }
}

variable "max_attempts" {
  description = "REMEDIATOR_MAX_ATTEMPTS: re-enqueues of one work item after wait outcomes before the give-up is journaled."
  type        = string
  default     = "30"

  validation {
    condition     = can(tonumber(var.max_attempts)) && tonumber(var.max_attempts) >= 1
    error_message = "max_attempts: a whole number >= 1."
  }
}

variable "max_wait_seconds" {
  description = "REMEDIATOR_MAX_WAIT_SECONDS: longest visibility delay of a re-enqueued work item."
  type        = string
  default     = "600"

  validation {
    condition     = can(tonumber(var.max_wait_seconds)) && tonumber(var.max_wait_seconds) >= 1
    error_message = "max_wait_seconds: a number of seconds >= 1."
  }
}

variable "event_max_age_seconds" {
  description = "REMEDIATOR_EVENT_MAX_AGE_SECONDS: the oldest Event Grid event acted on (older: dropped as a replay). Default 25 h."
  type        = string
  default     = "90000"

  validation {
    condition     = can(tonumber(var.event_max_age_seconds)) && tonumber(var.event_max_age_seconds) >= 3600
    error_message = "event_max_age_seconds: seconds, at least 3600 (Event Grid retries for up to 24 h)."
  }
}

variable "event_max_skew_seconds" {
  description = "REMEDIATOR_EVENT_MAX_SKEW_SECONDS: how far in the future an event or policy-state time may lie."
  type        = string
  default     = "300"

  validation {
    condition     = can(tonumber(var.event_max_skew_seconds)) && tonumber(var.event_max_skew_seconds) >= 0 && tonumber(var.event_max_skew_seconds) <= 3600
    error_message = "event_max_skew_seconds: seconds in [0, 3600]."
  }
}

variable "scope_remediations_per_hour" {
  description = "REMEDIATOR_SCOPE_REMEDIATIONS_PER_HOUR: POST /api/remediate {scope} requests one caller may make per hour."
  type        = string
  default     = "6"

  validation {
    condition     = can(tonumber(var.scope_remediations_per_hour)) && tonumber(var.scope_remediations_per_hour) >= 1
    error_message = "scope_remediations_per_hour: a whole number >= 1."
  }
}

variable "maximum_instance_count" {
  description = "Upper bound of Flex Consumption instances (40-1000)."
  type        = number
  default     = 40

  validation {
    condition     = var.maximum_instance_count >= 40 && var.maximum_instance_count <= 1000
    error_message = "maximum_instance_count: 40-1000 (Flex Consumption limits)."
  }
}

variable "instance_memory_mb" {
  description = "Instance memory of the Flex Consumption plan."
  type        = number
  default     = 2048

  validation {
    condition     = contains([2048, 4096], var.instance_memory_mb)
    error_message = "instance_memory_mb: 2048 or 4096."
  }
}

variable "create_event_subscriptions" {
  description = "Create the two Event Grid subscriptions per managed subscription. Event Grid validates an AzureFunction endpoint when the subscription is created, so apply once with false, deploy the code, then apply with true (the Bicep path does the same with its postdeploy hook)."
  type        = bool
  default     = false
}

variable "manage_management_groups" {
  description = "Grant the roles and assign the audits at the management groups of the config's scope.managementGroups in this apply (the Bicep path deploys infra/access/management-group-access.bicep for that)."
  type        = bool
  default     = true
}

variable "arm_endpoint" {
  description = "Azure Resource Manager endpoint of the cloud (REMEDIATOR_ARM_ENDPOINT); the Bicep takes environment().resourceManager."
  type        = string
  default     = "https://management.azure.com"

  validation {
    condition     = startswith(var.arm_endpoint, "https://")
    error_message = "arm_endpoint: an https URL."
  }
}
