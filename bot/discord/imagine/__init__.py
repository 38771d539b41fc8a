"""The `/imagine` feature: the slash command and its confirmation for many jobs at once."""
