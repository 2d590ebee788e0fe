"""Alert delivery: what the alert actor (actors/alerts.py) is built from.

* :mod:`.formats`: Telegram HTML for every signal kind, escaping, the 4096 split, plain-text fallback.
* :mod:`.policy`: priority tiers, per-chat hourly budgets, quiet hours and the digest.
* :mod:`.cascade_live`: one live message per cascade (edits, summary) and the market-wide report.
* :mod:`.outbox`: the durable SQLite outbox every Telegram/webhook alert is written to before it is sent.
* :mod:`.tgclient`: python-telegram-bot set-up: token redaction in logs, error classification.
* :mod:`.sinks`: Telegram and webhook senders (one request each, outcome classified).
* :mod:`.delivery`: the worker that drains the outbox (per-chat lanes, rates, 429 pauses, back-off).
* :mod:`.router`: signal -> policy -> rendered rows in the outbox (the actor's logic, testable without a bus).
"""
