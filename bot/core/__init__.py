"""The core every front end shares: the job rules, the services, the dispatcher, and their ports.

- `jobs`: `JobService`, prompts and button actions become job rows (submit, derive, cancel);
- `dispatcher`: the fair queue in front of the engine;
- `moderation`: the moderation policy (banned words, bans) checked on every submission;
- `services`: `Services`, the running parts started and stopped together;
- `ports`: what the core needs from outside (store, engine, clock, image fetcher), as Protocols.

The prompt language (`bot.prompt`) and the settings (`bot.settings`) belong to the core too; they
keep their DESIGN.md paths. The core imports no front end (`bot.discord`, `bot.console`), which
import-linter checks; a front end is a folder beside it that imports it.
"""
