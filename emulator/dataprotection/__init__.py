"""Azure Backup for AKS in the emulator: backup vaults, policies, instances, validateForBackup, extension
routing, trusted-access role bindings, resource locks, role propagation and the role-assignment limit.

Routes are registered by :mod:`emulator.dataprotection.routes` (discovered like every other plug-in); the
behaviour and every assumption are documented in emulator/README.md, section "Part 3: Azure Backup for AKS".
"""
