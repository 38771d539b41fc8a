"""PNG text chunks: a stored picture says how it was made, in chunks any reader gets back."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from storage import png
from storage.errors import InvalidInputError
from storage.files import EncodedImage
from storage.png_text import with_text
from tests.storage.test_png import chunks, picture


def encoded(width: int = 16, height: int = 8) -> EncodedImage:
    pieces = png.encode_many([picture(width, height)])[0]
    return EncodedImage(tuple(pieces), width, height)


def read(image: EncodedImage) -> PILImage.Image:
    picture_ = PILImage.open(io.BytesIO(b"".join(image.pieces)))
    picture_.load()
    return picture_


def test_text_goes_in_after_the_header_and_pillow_reads_it_back_with_the_pixels():
    image = encoded()
    tagged = with_text(
        image, {"parameters": "a red fox\nSeed: 3, Size: 16x8", "prompt": "ein Fuchs über Schnee 🦊"}
    )

    data = b"".join(tagged.pieces)
    kinds = [kind for kind, _ in chunks(data)]  # every CRC checked
    assert kinds[:3] == [b"IHDR", b"tEXt", b"iTXt"]  # Latin-1 as tEXt, the rest as UTF-8 iTXt
    opened = read(tagged)
    assert opened.text == {
        "parameters": "a red fox\nSeed: 3, Size: 16x8",
        "prompt": "ein Fuchs über Schnee 🦊",
    }
    assert opened.tobytes() == read(image).tobytes()


def test_a_picture_stored_again_keeps_only_its_new_text():
    first = with_text(encoded(), {"imagine": "job A", "parameters": "old"})
    as_loaded = EncodedImage(
        (b"".join(first.pieces),), first.width, first.height
    )  # one piece, as read from disk

    again = with_text(as_loaded, {"imagine": "job B"})

    assert read(again).text == {"imagine": "job B"}
    assert sum(kind == b"tEXt" for kind, _ in chunks(b"".join(again.pieces))) == 1


@pytest.mark.parametrize("key", ["", "x" * 80, "a\0b", "schlüssel✓"])
def test_a_bad_key_is_refused(key):
    with pytest.raises(InvalidInputError, match="PNG text key"):
        with_text(encoded(), {key: "value"})
