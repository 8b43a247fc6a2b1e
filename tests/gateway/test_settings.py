"""Settings from the environment, and secrets from files (``SCIM_GATEWAY_<NAME>_FILE``)."""

from __future__ import annotations

import pytest

from gateway.settings import SettingsError, load_settings


def test_a_value_from_a_file_as_docker_kubernetes_and_systemd_hand_secrets_over(tmp_path):
    secret = tmp_path / "url"
    secret.write_text("postgresql://scim:s3cret@db:5432/scim\n")
    settings = load_settings({"SCIM_GATEWAY_DATABASE_URL_FILE": str(secret)})
    assert settings.database_url == "postgresql://scim:s3cret@db:5432/scim"


def test_any_setting_may_come_from_a_file_and_is_checked_like_the_variable(tmp_path):
    (tmp_path / "port").write_text("9090")
    (tmp_path / "bad").write_text("eighty")
    assert load_settings({"SCIM_GATEWAY_PORT_FILE": str(tmp_path / "port")}).port == 9090
    with pytest.raises(SettingsError) as error:
        load_settings({"SCIM_GATEWAY_PORT_FILE": str(tmp_path / "bad")})
    assert str(error.value) == "SCIM_GATEWAY_PORT: cannot read 'eighty'"


def test_both_the_variable_and_its_file_is_an_error(tmp_path):
    (tmp_path / "url").write_text("postgresql://a")
    with pytest.raises(SettingsError) as error:
        load_settings({"SCIM_GATEWAY_DATABASE_URL": "postgresql://b",
                       "SCIM_GATEWAY_DATABASE_URL_FILE": str(tmp_path / "url")})
    assert str(error.value) == "set SCIM_GATEWAY_DATABASE_URL or SCIM_GATEWAY_DATABASE_URL_FILE, not both"


def test_a_missing_file_is_a_one_line_error_naming_it(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(SettingsError) as error:
        load_settings({"SCIM_GATEWAY_DATABASE_URL_FILE": str(missing)})
    assert str(error.value) == f"SCIM_GATEWAY_DATABASE_URL_FILE: cannot read {missing}: No such file or directory"


def test_a_command_line_flag_still_wins_over_the_file(tmp_path):
    (tmp_path / "url").write_text("postgresql://from-file")
    settings = load_settings({"SCIM_GATEWAY_DATABASE_URL_FILE": str(tmp_path / "url")},
                             database_url="postgresql://from-flag")
    assert settings.database_url == "postgresql://from-flag"
