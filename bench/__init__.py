"""Benchmarks, run as ``python -m bench <name>`` (``python -m bench list`` shows them). Each reports what it
measured; speed and memory targets live here, never in timed tests."""
