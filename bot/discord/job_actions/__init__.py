"""Job actions: `JobActions` (what `/imagine`, a job button or the Custom Zoom modal does once it
is accepted) and the Custom Zoom modal. The buttons themselves (`bot/discord/buttons.py`) are a
shared piece: results are rendered with them, and a click is handed here."""
