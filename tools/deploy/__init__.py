"""Deployment tooling: the preflight and the generated deployment file (docs/deploy.md)."""
