"""`VBG_LOG_LEVEL` decides which log entries are written (issue #24 item 7: production wrote a
DEBUG line per request while Terraform set INFO)."""

import json

import pytest

from shared.core import clients, config, logs


@pytest.fixture
def level(monkeypatch):
    def set_level(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv("VBG_LOG_LEVEL", raising=False)
        else:
            monkeypatch.setenv("VBG_LOG_LEVEL", value)
        clients.reset()

    yield set_level
    monkeypatch.undo()
    clients.reset()


def written(capsys, *severities: str) -> list[str]:
    capsys.readouterr()
    for severity in severities:
        logs.log(severity, f"a {severity} entry", job_id="j1")
    return [json.loads(line)["severity"] for line in capsys.readouterr().out.splitlines()]


ALL = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ALL[1:]),
        ("DEBUG", ALL),
        ("INFO", ALL[1:]),
        ("WARNING", ALL[2:]),
        ("ERROR", ALL[3:]),
        ("CRITICAL", ALL[4:]),
    ],
)
def test_entries_below_the_level_are_not_written(level, capsys, value, expected):
    level(value)
    assert written(capsys, *ALL) == list(expected)


def test_the_helpers_go_through_the_level(level, capsys):
    level("WARNING")
    capsys.readouterr()
    logs.debug("d")
    logs.info("i")
    logs.warning("w")
    logs.error("e")
    assert [json.loads(x)["message"] for x in capsys.readouterr().out.splitlines()] == ["w", "e"]


def test_a_bad_level_fails_the_settings_and_logs_still_say_why(level, capsys):
    level("verbose")
    with pytest.raises(config.ConfigError, match="VBG_LOG_LEVEL='verbose' must be one of"):
        config.settings()
    assert written(capsys, "DEBUG", "ERROR") == ["DEBUG", "ERROR"]


def test_a_request_writes_no_debug_line_at_info(level, capsys, monkeypatch):
    from tests.support import passthrough_client

    for value, lines in (("INFO", 0), ("DEBUG", 1)):
        level(value)
        capsys.readouterr()
        reply = passthrough_client().get("/v1/no-such-route")
        assert reply.status_code == 404
        entries = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
        requests = [e for e in entries if e["message"] == "request"]
        assert len(requests) == lines, value
        assert all(e["severity"] == "DEBUG" and e["status"] == 404 for e in requests)
