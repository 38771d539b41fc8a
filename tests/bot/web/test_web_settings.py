"""IMAGINE_WEB_PORT, IMAGINE_WEB_HOST and IMAGINE_WEB_URL: read, checked, and where links point."""

from __future__ import annotations

import pytest

from bot.core.web_access import public_base
from bot.settings import Settings, SettingsError


def test_the_web_is_off_until_a_port_or_url_is_set() -> None:
    settings = Settings.from_env({})
    assert (settings.web_port, settings.web_host, settings.web_url, settings.web_enabled) == (
        None,
        "127.0.0.1",
        None,
        False,
    )
    on = Settings.from_env({"IMAGINE_WEB_PORT": "8081", "IMAGINE_WEB_URL": "https://imagine.example/"})
    assert (on.web_port, on.web_url, on.web_enabled) == (8081, "https://imagine.example", True)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"IMAGINE_WEB_PORT": "70000"}, "IMAGINE_WEB_PORT=70000 is not a TCP port"),
        ({"IMAGINE_WEB_PORT": "web"}, "IMAGINE_WEB_PORT"),
        ({"IMAGINE_WEB_URL": "imagine.example"}, "IMAGINE_WEB_URL='imagine.example' is not a web address"),
    ],
)
def test_a_bad_web_setting_is_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(environ)


def test_links_use_the_public_url_else_the_address_served() -> None:
    assert public_base("https://imagine.example", "0.0.0.0", 8080) == "https://imagine.example"
    assert public_base(None, "0.0.0.0", None) == "http://127.0.0.1:8080"
    assert public_base(None, "192.168.1.5", 9000) == "http://192.168.1.5:9000"
