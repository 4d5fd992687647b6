"""Event Grid in the emulator: system events, event subscriptions, webhook delivery, custom topic."""
