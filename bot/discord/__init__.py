"""The Discord front end: an adapter over `bot.core`, one folder per feature.

`app` (the bot and its factory) loads one cog per feature folder (`imagine`, `job_actions`,
`moderation`, `info`); `buttons`, `messenger`, `render` and `permissions` are shared pieces;
`replies` is the leaf every module may import. Imports run one way: app and features -> shared
pieces -> replies -> core (import-linter checks it, see pyproject.toml).
"""
