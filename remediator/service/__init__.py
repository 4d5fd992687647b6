"""Use cases shared by the Functions app and the CLI: reconcile, sweep, and the trigger handlers."""
