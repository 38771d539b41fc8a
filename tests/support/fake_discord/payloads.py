"""The fake Discord's payload shapes and pure helpers: Discord's epoch, message flags and callback
types, JSON answers, users and members, multipart uploads, attachments' content types and image
sizes, and a message's buttons."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from PIL import Image, UnidentifiedImageError

DISCORD_EPOCH_MS = 1420070400000
EPHEMERAL = 64  # message flag: only the member who asked sees it

# Interaction callback types (what the client answers an interaction with).
CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE = 4, 5
CALLBACK_DEFERRED_UPDATE, CALLBACK_UPDATE, CALLBACK_MODAL = 6, 7, 9


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py parses a body only when the content type is exactly "application/json" (no
    # charset), as Discord sends it.
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


# --- users and members ---------------------------------------------------------------------------


def _user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "flags": 0,
        "public_flags": 0,
    }


def _member(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "user": user,
        "nick": None,
        "roles": [],
        "joined_at": _iso(datetime.now(UTC)),
        "deaf": False,
        "mute": False,
        "flags": 0,
        "permissions": str((1 << 41) - 1),  # everything but administrator
    }


# --- helpers -------------------------------------------------------------------------------------


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Every button of a message, row by row (action rows and components-v2 containers alike)."""
    found: list[dict[str, Any]] = []

    def walk(components: list[dict[str, Any]]) -> None:
        for component in components:
            if component.get("type") == 2:
                found.append(component)
            walk(component.get("components") or [])
            if isinstance(component.get("accessory"), dict):
                walk([component["accessory"]])

    walk(message.get("components") or [])
    return found


def button_labels(message: dict[str, Any]) -> list[str]:
    """What a member sees on each button: its label, or its emoji when it has no label."""
    return [b.get("label") or (b.get("emoji") or {}).get("name", "") for b in buttons(message)]


def button_id(message: dict[str, Any], label: str) -> str:
    """The custom_id of the button a member would click by its label (or emoji)."""
    for button in buttons(message):
        if (button.get("label") or (button.get("emoji") or {}).get("name")) == label:
            return button["custom_id"]
    raise AssertionError(f"no button {label!r} on message {message.get('id')}: {button_labels(message)}")


async def _read_multipart(request: web.Request) -> tuple[Any, list[tuple[str, bytes]]]:
    reader = await request.multipart()
    body: Any = None
    files: list[tuple[int, str, bytes]] = []
    while (part := await reader.next()) is not None:
        data = await part.read()  # type: ignore[union-attr]
        name = part.name or ""  # type: ignore[union-attr]
        if name == "payload_json":
            body = json.loads(bytes(data).decode())
        elif name.startswith("files["):
            index = int(name[len("files[") : -1])
            files.append((index, part.filename or f"file{index}", bytes(data)))  # type: ignore[union-attr]
    return body, [(name, data) for _, name, data in sorted(files)]


def _guess_type(filename: str) -> str:
    lower = filename.lower()
    for suffix, kind in (
        (".png", "image/png"),
        (".jpg", "image/jpeg"),
        (".jpeg", "image/jpeg"),
        (".webp", "image/webp"),
        (".gif", "image/gif"),
    ):
        if lower.endswith(suffix):
            return kind
    return "application/octet-stream"


def _image_size(data: bytes) -> tuple[int, int] | None:

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError):
        return None


def _iso(moment: datetime) -> str:
    return moment.isoformat()
