"""Azure Policy in the emulator: the four Backup built-ins, compliance, policy states, remediation tasks."""
