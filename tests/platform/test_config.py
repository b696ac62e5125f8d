"""Config: every problem names the source (file or variable), the key and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.kernel.errors import ConfigError
from hub.platform.config import load, parse_duration, redacted_url


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path | None, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(path, environ=environ or {})
    return info.value.problems


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    loaded = load(environ={})
    assert loaded.path is None
    assert loaded.settings.database.url == "sqlite:///hub.db"
    assert loaded.settings.worker.concurrency == 4


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope.toml") == [f"{tmp_path / 'nope.toml'}: config file not found"]


def test_hub_config_variable_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[worker]\nconcurrency = 7\n')
    assert load(environ={"HUB_CONFIG": str(path)}).settings.worker.concurrency == 7


def test_unknown_key_wrong_type_and_bad_value_all_reported(tmp_path: Path) -> None:
    path = write(tmp_path, '[worker]\nconcurency = 3\nlease = "soon"\nmax_attempts = 0\n[bogus]\nx = 1\n')
    found = problems(path)
    assert f"{path}: worker.concurency = 3: unknown key" in found
    assert f"{path}: worker.lease = 'soon': expected a duration such as 30s, 5m or 1h" in found
    assert any(p.startswith(f"{path}: worker.max_attempts = 0: ") for p in found)
    assert f"{path}: bogus = {{'x': 1}}: unknown key" in found


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[worker\n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}: invalid TOML:")


def test_environment_overrides_and_their_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "[worker]\nconcurrency = 2\n")
    loaded = load(path, environ={"HUB_WORKER__CONCURRENCY": "9", "HUB_DATABASE__URL": "sqlite:///x.db"})
    assert loaded.settings.worker.concurrency == 9
    assert loaded.settings.database.url == "sqlite:///x.db"
    assert loaded.env_keys["worker.concurrency"] == "HUB_WORKER__CONCURRENCY"
    found = problems(path, {"HUB_WORKER__CONCURRENCY": "lots"})
    assert found[0].startswith("environment HUB_WORKER__CONCURRENCY: worker.concurrency = 'lots': ")


def test_variables_without_nesting_are_not_config(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, ""), environ={"HUB_SKIP_SOMETHING": "1", "HUB_CONFIG_X": "y"})
    assert loaded.env_keys == {}


def test_durations() -> None:
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2m") == 120
    assert parse_duration(3) == 3.0
    for bad in ("0s", "-1", "fast", True):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_schedule_entry_validation(tmp_path: Path) -> None:
    path = write(tmp_path, '[schedule.sync]\nevery = "30s"\n[schedule.bad]\njob = "Sync Now"\nevery = "1m"\n')
    found = problems(path)
    assert f"{path}: schedule.sync.job: missing (required)" in found


def test_metrics_bind_only_to_localhost(tmp_path: Path) -> None:
    path = write(tmp_path, '[metrics]\nenabled = true\nhost = "0.0.0.0"\n')
    (problem,) = problems(path)
    assert problem.startswith(f"{path}: metrics.host = '0.0.0.0': the metrics endpoint binds to localhost only")


def test_secret_from_environment_file_and_credentials_dir(tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file-s3cret\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "db-password").write_text("from-credential-s3cret")
    for ref, env, expected in [
        ('{ env = "DB_PW" }', {"DB_PW": "from-env-s3cret"}, "from-env-s3cret"),
        (f'{{ file = "{secret_file}" }}', {}, "from-file-s3cret"),
        ('{ credential = "db-password" }', {"CREDENTIALS_DIRECTORY": str(creds)}, "from-credential-s3cret"),
    ]:
        path = write(tmp_path, f'[database]\nurl = "postgresql://hub@db/hub"\npassword = {ref}\n')
        secret = load(path, environ=env).settings.database.password
        assert secret is not None and secret.get() == expected
        assert expected not in repr(secret)


def test_missing_secrets_are_reported_without_their_value(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\npassword = { env = "NOT_SET_ANYWHERE" }\n')
    (problem,) = problems(path)
    assert problem == f"{path}: database.password = {{'env': 'NOT_SET_ANYWHERE'}}: " \
        "environment variable NOT_SET_ANYWHERE is not set"
    path = write(tmp_path, '[database]\npassword = { credential = "pw" }\n')
    (problem,) = problems(path)
    assert "needs $CREDENTIALS_DIRECTORY" in problem


def test_relative_mappings_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[mappings]\ndir = "maps"\n')
    assert load(path, environ={}).settings.mappings.dir == tmp_path / "maps"


def test_redacted_url() -> None:
    assert redacted_url("postgresql://hub:pa55@db:5432/hub") == "postgresql://hub:***@db:5432/hub"
