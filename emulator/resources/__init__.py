"""Route modules for the ARM core: subscriptions/providers, managed clusters, extensions, storage,
role assignments and a generic store for other child resources. Each exposes ``register(router, ctx)``."""
