"""The Telegram bot: the command table and dispatch (commands.py), handlers one module per help section
(*_cmds.py, accuracy.py) and what they share (context.py), the history they read (history.py, candles.py),
and the python-telegram-bot wiring (app.py)."""
