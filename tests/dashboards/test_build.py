"""Dashboards, alert rules and routing as code: fresh, valid for the real tools, routed right."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.models import alerting as alerting_models
from grafana_foundation_sdk.models import dashboard as dashboard_models

from dashboards.alerts import RULES
from dashboards.build import EXAMPLE_COORDINATORS, ROOT, build, render
from dashboards.routing import Coordinators, write_runtime_alertmanager
from dashboards.watchroom import expressions
from tests.support.paths import FIXTURES
from turnout_watch.core.errors import ConfigError


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} missing: `make test` installs it (Makefile system-deps)"
    return path


def test_committed_files_are_up_to_date() -> None:
    stale = build(check=True)
    assert stale == [], f"run `turnout-watch dashboards build`; stale: {stale}"


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    checked = subprocess.run(
        [tool("promtool"), "check", "rules", str(ROOT / "prometheus" / "rules.yml")], capture_output=True, text=True
    )
    assert checked.returncode == 0 and f"{len(RULES)} rules found" in checked.stdout, checked.stdout + checked.stderr
    tested = subprocess.run(
        [tool("promtool"), "test", "rules", str(FIXTURES / "rules_test.yml")], capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_rule_has_a_promtool_test() -> None:
    tests = yaml.safe_load((FIXTURES / "rules_test.yml").read_text())["tests"]
    tested = {t["alertname"] for case in tests for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert tested == {r.name for r in RULES}


def test_generated_grafana_files_load_into_the_sdk_types() -> None:
    files = render()
    for name in ("watch-room", "region"):
        model = json.loads(files[Path(f"grafana/dashboards/{name}.json")])
        board = dashboard_models.Dashboard.from_json(model)
        assert board.uid and board.panels and list(expressions(model))
    rules = yaml.safe_load(files[Path("grafana/provisioning/alerting/rules.yaml")])
    parsed = [alerting_models.Rule.from_json(r) for r in rules["groups"][0]["rules"]]
    assert [r.title for r in parsed] == [r.name for r in RULES]
    assert all(r.condition == "B" and len(r.data) == 2 for r in parsed)
    policies = yaml.safe_load(files[Path("grafana/provisioning/alerting/policies.yaml")])["policies"][0]
    tree = alerting_models.NotificationPolicy.from_json({k: v for k, v in policies.items() if k != "orgId"})
    points = yaml.safe_load(files[Path("grafana/provisioning/alerting/contact-points.yaml")])["contactPoints"]
    names = {p["name"] for p in points}
    assert tree.receiver in names and all(route.receiver in names for route in tree.routes or [])


def grafana_receivers(policy: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """Grafana's (Alertmanager's) routing: first matching child, further ones while `continue`."""
    found: list[str] = []
    for route in policy.get("routes", []):
        if all(_matches(labels.get(name, ""), op, value) for name, op, value in route.get("object_matchers", [])):
            found.extend(grafana_receivers(route, labels) or [route["receiver"]])
            if not route.get("continue"):
                break
    return found


def _matches(actual: str, op: str, value: str) -> bool:
    return {
        "=": actual == value,
        "!=": actual != value,
        "=~": bool(re.fullmatch(value, actual)),
        "!~": not re.fullmatch(value, actual),
    }[op]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"region": "KZ-61", "severity": "warning"}, ["south"]),
        ({"region": "KZ-61", "severity": "critical"}, ["watch-room-lead", "south"]),
        ({"region": "KZ-75", "severity": "warning"}, ["almaty"]),
        ({"alertname": "CecReleaseOverdue", "severity": "warning"}, ["watch-room-lead"]),
    ],
)
def test_routing_sends_turkistan_to_its_coordinator_not_almatys(
    labels: dict[str, str], expected: list[str], tmp_path: Path
) -> None:
    files = render()
    config = tmp_path / "alertmanager.yml"
    config.write_text(files[Path("alertmanager/alertmanager.yml")])
    args = [f"{k}={v}" for k, v in labels.items()]
    routed = subprocess.run(
        [tool("amtool"), "config", "routes", "test", f"--config.file={config}", *args], capture_output=True, text=True
    )
    assert routed.returncode == 0, routed.stderr
    assert routed.stdout.strip().split(",") == expected
    policy = yaml.safe_load(files[Path("grafana/provisioning/alerting/policies.yaml")])["policies"][0]
    assert (grafana_receivers(policy, labels) or [policy["receiver"]]) == expected


def test_amtool_accepts_the_alertmanager_config(tmp_path: Path) -> None:
    checked = subprocess.run(
        [tool("amtool"), "check-config", str(ROOT / "alertmanager" / "alertmanager.yml")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[coordinator]]\nname="x"\nregions=["Astana"]\nchannel="email"\naddress="a@b"',
            r"a \[lead\] table is required",
        ),
        ('[lead]\nname="L"\nchannel="pigeon"\naddress="x"', "channel must be one of"),
        (
            '[lead]\nname="L"\nchannel="email"\naddress="l@x"\n[[coordinator]]\nname="S"\nregions=["Turkistn"]\n'
            'channel="email"\naddress="s@x"',
            "unknown region 'Turkistn'",
        ),
    ],
)
def test_bad_coordinators_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        Coordinators.load(path)


def test_example_coordinators_cover_every_region() -> None:
    from datetime import date

    from turnout_watch.core.gazetteer import default_gazetteer

    people = Coordinators.load(EXAMPLE_COORDINATORS)
    covered = {code for person in people.coordinators for code in person.regions}
    assert covered == {r.code for r in default_gazetteer().regions_on(date(2026, 11, 23))}


ALL_CHANNELS = """
[lead]
name = "Lead"
channel = "email"
address = "lead@example.org"

[[coordinator]]
name = "South"
regions = ["Turkistan Region"]
email = ["south@example.org", "deputy@example.org"]
telegram = "-1001000000001"
webhook = "http://127.0.0.1:9/south"

[smtp]
smarthost = "smtp.example.org:587"
from = "tw@example.org"
username = "tw"
password_file = "{secrets}/smtp-password"
require_tls = true

[telegram]
bot_token_file = "{secrets}/telegram-bot-token"

[timing]
group_wait = "5s"
evaluation_interval = "10s"
flag_window = "1h30m"
"""


def all_channels(tmp_path: Path) -> Path:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "smtp-password").write_text("hunter2")
    (secrets / "telegram-bot-token").write_text("123:SECRET-TOKEN\n")
    path = tmp_path / "coordinators.toml"
    path.write_text(ALL_CHANNELS.format(secrets=secrets))
    return path


def test_every_channel_is_generated_for_both_alertmanager_and_grafana_without_secrets(tmp_path: Path) -> None:
    files = render(all_channels(tmp_path))
    am_text = files[Path("alertmanager/alertmanager.yml")]
    assert "hunter2" not in "".join(files.values()) and "SECRET-TOKEN" not in "".join(files.values())
    config = tmp_path / "alertmanager.yml"
    config.write_text(am_text)
    checked = subprocess.run([tool("amtool"), "check-config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    am = yaml.safe_load(am_text)
    assert am["global"]["smtp_auth_password_file"] == str(tmp_path / "secrets" / "smtp-password")
    assert am["global"]["smtp_require_tls"] is True and am["route"]["group_wait"] == "5s"
    south = next(r for r in am["receivers"] if r["name"] == "south")
    assert [c["to"] for c in south["email_configs"]] == ["south@example.org", "deputy@example.org"]
    assert south["telegram_configs"][0]["chat_id"] == -1001000000001
    assert south["webhook_configs"] == [{"url": "http://127.0.0.1:9/south", "send_resolved": True}]
    assert all(c["send_resolved"] for r in am["receivers"] for kind in r if kind != "name" for c in r[kind])
    points = yaml.safe_load(files[Path("grafana/provisioning/alerting/contact-points.yaml")])["contactPoints"]
    integrations = {r["type"]: r for p in points if p["name"] == "south" for r in p["receivers"]}
    assert set(integrations) == {"email", "telegram", "webhook"}
    assert integrations["telegram"]["settings"]["bottoken"] == f"$__file{{{tmp_path}/secrets/telegram-bot-token}}"
    assert len({r["uid"] for p in points for r in p["receivers"]}) == sum(len(p["receivers"]) for p in points)
    for point in points:  # each integration loads into the SDK's type
        assert all(alerting_models.ContactPoint.from_json({"name": point["name"], **r}) for r in point["receivers"])
    rules = yaml.safe_load(files[Path("prometheus/rules.yml")])["groups"][0]
    assert rules["interval"] == "10s"
    flag_rule = next(r for r in rules["rules"] if r["alert"] == "TurnoutFlagRaised")
    assert flag_rule["expr"].endswith("< 5400")


def test_the_runtime_alertmanager_file_holds_the_token_privately(tmp_path: Path) -> None:
    people = Coordinators.load(all_channels(tmp_path))
    runtime = write_runtime_alertmanager(people, tmp_path / "run" / "alertmanager.yml")
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o600
    am = yaml.safe_load(runtime.read_text())
    assert [c["bot_token"] for r in am["receivers"] for c in r.get("telegram_configs", [])] == ["123:SECRET-TOKEN"]
    checked = subprocess.run([tool("amtool"), "check-config", str(runtime)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (tmp_path / "secrets" / "smtp-password").write_text("hunter2\n")
    with pytest.raises(ConfigError, match="ends with a newline"):
        write_runtime_alertmanager(people, runtime)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[smtp]\nhost = "x"', r"\[smtp\]: unknown key\(s\) host; known: .*from.*smarthost"),
        ('[timing]\nflag_window = "half an hour"', "not a duration"),
        ('[smtp]\nusername = "u"\npassword = "p"', "unknown key"),
        ('[smtp]\npassword_file = "/p"', "password_file needs a username"),
    ],
)
def test_bad_delivery_tables_are_clear_errors(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[lead]\nname="L"\nemail="l@x"\n{extra}\n')
    with pytest.raises(ConfigError, match=message):
        Coordinators.load(path)


def test_a_person_needs_a_channel_and_telegram_needs_a_chat_id(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[lead]\nname="L"\n')
    with pytest.raises(ConfigError, match="at least one of email, telegram, webhook"):
        Coordinators.load(path)
    path.write_text('[lead]\nname="L"\ntelegram="@watchroom"\n')
    with pytest.raises(ConfigError, match="chat id is a number"):
        Coordinators.load(path)
