"""local.settings.json: made from the sample with fresh secrets, loaded without overriding."""

import base64
import json
import string

from devhost.settings import (
    HostConfig,
    generate_password,
    init_local_settings,
    load_local_settings,
    parse_timespan,
)


def write(path, values: dict) -> None:
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values, "Host": {"LocalHttpPort": 7071}}))


def test_placeholders_become_fresh_secrets(tmp_path):
    sample, target = tmp_path / "sample.json", tmp_path / "local.json"
    write(sample, {"HMAC_KEYS": "k1:<generate:key>", "MASTER": "<generate:key>", "PW": "<generate:password>", "X": "1"})
    init_local_settings(sample, target)
    values = json.loads(target.read_text())["Values"]
    assert values["X"] == "1"
    assert len(base64.b64decode(values["HMAC_KEYS"].removeprefix("k1:"), validate=True)) == 32
    assert len(base64.b64decode(values["MASTER"], validate=True)) == 32
    assert values["MASTER"] != values["HMAC_KEYS"].removeprefix("k1:")
    assert "<generate" not in values["PW"]
    assert target.stat().st_mode & 0o077 == 0  # secrets: owner only


def test_an_existing_file_keeps_its_values_and_gains_new_settings(tmp_path):
    sample, target = tmp_path / "sample.json", tmp_path / "local.json"
    write(target, {"MASTER": "mine"})
    write(sample, {"MASTER": "<generate:key>", "NEW_KEY": "<generate:key>"})
    assert init_local_settings(sample, target) == ["NEW_KEY"]
    values = json.loads(target.read_text())["Values"]
    assert values["MASTER"] == "mine"
    assert len(base64.b64decode(values["NEW_KEY"])) == 32
    assert init_local_settings(sample, target) == []


def test_generated_passwords_are_long_and_mixed():
    passwords = {generate_password() for _ in range(20)}
    assert len(passwords) == 20
    for password in passwords:
        assert len(password) >= 20
        assert any(c in string.digits for c in password)
        assert any(c in string.ascii_uppercase for c in password)
        assert any(c in string.ascii_lowercase for c in password)


def test_loading_never_overrides_the_environment(tmp_path):
    path = tmp_path / "local.json"
    write(path, {"A": "from file", "B": "from file", "FLAG": True})
    environ = {"A": "from environment"}
    load_local_settings(path, environ)
    assert environ == {"A": "from environment", "B": "from file", "FLAG": "true"}


def test_host_json_timespans_and_defaults(tmp_path):
    assert parse_timespan("00:00:30").total_seconds() == 30
    assert parse_timespan("1.02:00:00.5").total_seconds() == 93600.5
    path = tmp_path / "host.json"
    extensions = {"http": {"routePrefix": ""}, "queues": {"visibilityTimeout": "00:00:05"}}
    path.write_text(json.dumps({"extensions": extensions}))
    config = HostConfig.load(path)
    assert config.route_prefix == ""
    assert config.queues.visibility_timeout.total_seconds() == 5
    assert config.queues.max_dequeue_count == 5
    assert HostConfig.load(tmp_path / "missing.json").route_prefix == "api"
