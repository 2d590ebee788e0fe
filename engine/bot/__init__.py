"""The Telegram bot: command handlers (commands.py), the history they read (history.py, candles.py),
and the python-telegram-bot wiring (app.py)."""
