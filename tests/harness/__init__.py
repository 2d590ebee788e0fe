"""Helpers the process tests share: TOML configs and the actors, the demo and `undertow tail` in their own processes."""
