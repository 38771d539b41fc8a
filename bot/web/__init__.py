"""Imagine Web: the gallery, the job page, Vary (Region) and the moderator's desk in a browser.

A front end like `bot.discord` and `bot.console`: it runs on the shared `Services` and imports
only the core, never another front end. `imagine web` runs it alone; the Discord bot serves it
too when `IMAGINE_WEB_PORT` is set.
"""
