"""The moderators' feature: `/mod` commands (the cog), their embeds, views and forms."""
