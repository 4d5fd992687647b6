"""Azure Resource Graph in the emulator: tables from the state, KQL subset (emulator.kql), paging, quota."""
