"""Kept for imports written before the layering: the bodies live in :mod:`emulator.model.bodies`."""

from emulator.model.bodies import (
    DEFAULT_K8S_VERSION,
    DEFAULT_TENANT,
    container_body,
    extension_body,
    managed_cluster_body,
    network_defaults,
    resource_group_body,
    storage_account_body,
)

__all__ = [
    "DEFAULT_K8S_VERSION",
    "DEFAULT_TENANT",
    "container_body",
    "extension_body",
    "managed_cluster_body",
    "network_defaults",
    "resource_group_body",
    "storage_account_body",
]
