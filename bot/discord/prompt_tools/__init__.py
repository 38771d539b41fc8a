"""Prompt and picture tools: /blend, /shorten, /describe."""
