"""Fault-injection tests (issue 7): one module per fault, a shared seeded harness (harness.py)."""
