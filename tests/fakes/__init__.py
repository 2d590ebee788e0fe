"""Test doubles for external services (a local Telegram Bot API in :mod:`tests.fakes.botapi`)."""
