"""aks-backup-remediator: keeps the Azure Backup extension on every AKS cluster that the tag rules select."""

__version__ = "0.1.0"
