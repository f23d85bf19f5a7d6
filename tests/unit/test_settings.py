"""The typed settings: every knob documented, validated once when the app is built, listed by
``portal settings`` with its secrets hidden."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from portal import create_app
from portal.cli import main
from portal.config import DEFAULTS, DOCS, Settings, SettingsError, as_settings, settings_of
from portal.submit import retry_delay


def overrides(tmp_path: Path, **values: object) -> dict[str, object]:
    return {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}", **values}


def test_every_setting_has_a_default_a_type_and_a_description() -> None:
    assert set(DEFAULTS) == set(DOCS) == set(Settings.model_fields)
    assert all(text.strip() and text.endswith(".") for text in DOCS.values())
    assert Settings.check(DEFAULTS) == Settings()  # the defaults pass their own rules


def test_the_app_keeps_one_frozen_validated_settings_object(tmp_path: Path) -> None:
    app = create_app(overrides(tmp_path, MAX_SWEEP_POINTS=7, TESTING=True))
    settings = settings_of(app)
    assert settings.MAX_SWEEP_POINTS == 7 and app.config["RUN_ROOT"] == settings.RUN_ROOT
    with pytest.raises(ValueError, match="frozen"):
        settings.MAX_SWEEP_POINTS = 8  # type: ignore[misc]


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"MAX_SWEEP_POINTS": "lots"}, "MAX_SWEEP_POINTS"),
        ({"GIT_CLONE_TIMEOUT": -1}, "GIT_CLONE_TIMEOUT"),
        ({"SLURM_JOB_COUNT_SHARE": 1.5}, "SLURM_JOB_COUNT_SHARE"),
        ({"INVITE_MAX_AGE": -1}, "INVITE_MAX_AGE"),
        ({"GIT_ALLOWED_HOSTS": 5}, "GIT_ALLOWED_HOSTS"),
        ({"POLLER_ENABLED": "sometimes"}, "POLLER_ENABLED"),
    ],
)
def test_a_bad_setting_stops_the_start_naming_it(
    tmp_path: Path, values: dict[str, object], named: str
) -> None:
    with pytest.raises(SettingsError, match=named):
        create_app(overrides(tmp_path, **values))


def test_every_bad_setting_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.check({"MAIL_PORT": "smtp", "PREVIEW_FETCHES": -2})
    assert "MAIL_PORT" in str(caught.value) and "PREVIEW_FETCHES" in str(caught.value)


def test_portal_settings_lists_values_and_hides_secrets(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PORTAL_MAIL_PASSWORD", "hunter2-smtp")
    monkeypatch.setenv("PORTAL_MAX_SWEEP_POINTS", "123")
    answer = CliRunner().invoke(main, ["settings", "--json"])
    assert answer.exit_code == 0, answer.output
    shown = json.loads(answer.output)
    assert shown["MAX_SWEEP_POINTS"] == 123
    assert shown["MAIL_PASSWORD"] == "(set)" and shown["METRICS_TOKEN"] == "(not set)"
    assert "hunter2" not in answer.output
    text = CliRunner().invoke(main, ["settings"]).output
    assert "MAX_SWEEP_POINTS = 123" in text and DOCS["MAX_SWEEP_POINTS"] in text


def test_portal_settings_refuses_a_bad_value_with_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PORTAL_MAX_SWEEP_POINTS", "lots")
    answer = CliRunner().invoke(main, ["settings"])
    assert answer.exit_code == 2
    assert "error: invalid settings: MAX_SWEEP_POINTS" in answer.output


def test_services_take_the_settings_or_a_mapping_validated_into_them() -> None:
    settings = as_settings({"MAX_SWEEP_POINTS": 9, "TESTING": True})
    assert as_settings(settings) is settings
    assert settings.MAX_SWEEP_POINTS == 9 and settings.LAUNCH_MAX_ATTEMPTS == 6  # default filled
    # the layers below (flows, slurm) read it as a mapping, other keys included
    assert settings["PDK_ROOT"] == DEFAULTS["PDK_ROOT"] and settings.get("TESTING") is True
    assert "MAX_SWEEP_POINTS" in settings and "NO_SUCH_KEY" not in settings
    assert settings.get("NO_SUCH_KEY", "fallback") == "fallback"
    with pytest.raises(KeyError):
        settings["NO_SUCH_KEY"]
    with pytest.raises(SettingsError, match="LAUNCH_MAX_ATTEMPTS"):
        retry_delay(1, {"LAUNCH_MAX_ATTEMPTS": "many"})
    assert retry_delay(1, {}) == 30  # LAUNCH_RETRY_BASE_SECONDS's default, said once
