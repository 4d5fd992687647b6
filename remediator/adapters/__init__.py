"""Adapters around the Azure SDKs: ARM, Resource Graph, queues, journal and outcome events."""
