"""Who hears about what: coordinators' regions and channels -> contact points and notification policies.

One routing tree, rendered twice: Grafana contact points and notification policies (provisioning, via
the Grafana Foundation SDK's alerting types) and an Alertmanager configuration for teams that use
Prometheus rules. Every alert with a `region` label goes to that region's coordinators; everything
`severity="critical"` also goes to the watch-room lead, who also receives whatever matches no one.

The config file (TOML) names people and regions in any spelling the gazetteer knows:

    [lead]
    name = "Watch-room lead"
    channel = "email"            # email | telegram | webhook
    address = "lead@example.org" # e-mail address, Telegram chat id, or webhook URL

    [[coordinator]]
    name = "South"
    regions = ["Turkistan Region", "Shymkent"]
    channel = "telegram"
    address = "-1001234567890"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from grafana_foundation_sdk.builders import alerting

from dashboards.alerts import sdk_json
from turnout_watch.core.errors import ConfigError, TurnoutWatchError
from turnout_watch.core.gazetteer import default_gazetteer

Channel = Literal["email", "telegram", "webhook"]
CHANNELS: tuple[Channel, ...] = ("email", "telegram", "webhook")


@dataclass(frozen=True)
class Person:
    name: str
    channel: Channel
    address: str
    regions: tuple[str, ...] = ()  # ISO codes; empty for the lead

    @property
    def receiver(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


@dataclass(frozen=True)
class Coordinators:
    lead: Person
    coordinators: tuple[Person, ...]

    @classmethod
    def load(cls, path: Path) -> Coordinators:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"coordinators file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
        if "lead" not in raw:
            raise ConfigError(f"{path}: a [lead] table is required (who receives every critical alert)")
        lead = _person(raw["lead"], f"{path}: [lead]", regions=False)
        people = tuple(
            _person(entry, f"{path}: coordinator #{n}", regions=True)
            for n, entry in enumerate(raw.get("coordinator", []), start=1)
        )
        receivers = [p.receiver for p in (lead, *people)]
        if len(set(receivers)) != len(receivers):
            raise ConfigError(f"{path}: two people share a name; names become receiver names and must differ")
        return cls(lead, people)


def _person(entry: dict[str, Any], where: str, regions: bool) -> Person:
    try:
        name, channel, address = str(entry["name"]), entry["channel"], str(entry["address"])
    except KeyError as exc:
        raise ConfigError(f"{where}: missing {exc.args[0]!r}") from exc
    if channel not in CHANNELS:
        raise ConfigError(f"{where}: channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    codes: list[str] = []
    if regions:
        if not entry.get("regions"):
            raise ConfigError(f"{where} ({name}): list the regions this coordinator covers")
        for region in entry["regions"]:
            try:
                codes.append(default_gazetteer().resolve(str(region)).code)
            except TurnoutWatchError as exc:
                raise ConfigError(f"{where} ({name}): {exc}") from exc
    return Person(name, channel, address, tuple(sorted(set(codes))))


def _region_regex(person: Person) -> str:
    return "|".join(person.regions)  # ISO codes hold only letters, digits and "-": nothing to escape


# -- Grafana -------------------------------------------------------------------------------------------

_GRAFANA_SETTINGS = {
    "email": lambda p: {"addresses": p.address, "singleEmail": False},
    "telegram": lambda p: {"chatid": p.address, "bottoken": "$__env{TELEGRAM_BOT_TOKEN}"},
    "webhook": lambda p: {"url": p.address, "httpMethod": "POST"},
}


def grafana_contact_points(config: Coordinators) -> dict[str, Any]:
    """Contact-point provisioning (apiVersion 1): one contact point per person."""
    points = []
    for person in (config.lead, *config.coordinators):
        cp = (
            alerting.ContactPoint()
            .uid(f"tw-{person.receiver}"[:40])
            .name(person.receiver)
            .type(person.channel)
            .settings(_GRAFANA_SETTINGS[person.channel](person))
            .build()
        )
        points.append(
            {
                "orgId": 1,
                "name": cp.name,
                "receivers": [{"uid": cp.uid, "type": cp.type_val, "settings": cp.settings}],
            }
        )
    return {"apiVersion": 1, "contactPoints": points}


def grafana_policy(config: Coordinators) -> alerting.NotificationPolicy:
    routes = [
        alerting.NotificationPolicy()
        .receiver(config.lead.receiver)
        .object_matchers([["severity", "=", "critical"]])
        .continue_val(True)
    ]
    for person in config.coordinators:
        routes.append(
            alerting.NotificationPolicy()
            .receiver(person.receiver)
            .object_matchers([["region", "=~", _region_regex(person)]])
            .continue_val(True)
        )
    return (
        alerting.NotificationPolicy()
        .receiver(config.lead.receiver)
        .group_by(["alertname", "election", "region"])
        .group_wait("10s")
        .group_interval("1m")
        .repeat_interval("1h")
        .routes(routes)  # type: ignore[arg-type]
    )


def grafana_policies(config: Coordinators) -> dict[str, Any]:
    """Notification-policy provisioning (apiVersion 1) from the SDK's NotificationPolicy model."""
    return {"apiVersion": 1, "policies": [{"orgId": 1, **sdk_json(grafana_policy(config).build())}]}


# -- Alertmanager --------------------------------------------------------------------------------------


def _am_receiver(person: Person) -> dict[str, Any]:
    if person.channel == "email":
        return {"name": person.receiver, "email_configs": [{"to": person.address, "send_resolved": True}]}
    if person.channel == "telegram":
        return {
            "name": person.receiver,
            # Alertmanager 0.25 (Debian 12) has no bot_token_file: put the token in when deploying.
            "telegram_configs": [{"chat_id": int(person.address), "bot_token": "SET-TELEGRAM-BOT-TOKEN"}],
        }
    return {"name": person.receiver, "webhook_configs": [{"url": person.address, "send_resolved": True}]}


def alertmanager_config(config: Coordinators) -> dict[str, Any]:
    """An alertmanager.yml with the same tree (`amtool config routes test` checks who gets what)."""
    routes: list[dict[str, Any]] = [
        {"receiver": config.lead.receiver, "matchers": ['severity="critical"'], "continue": True}
    ]
    for person in config.coordinators:
        routes.append(
            {"receiver": person.receiver, "matchers": [f'region=~"{_region_regex(person)}"'], "continue": True}
        )
    return {
        "global": {"smtp_smarthost": "localhost:25", "smtp_from": "turnout-watch@localhost", "smtp_require_tls": False},
        "route": {
            "receiver": config.lead.receiver,
            "group_by": ["alertname", "election", "region"],
            "group_wait": "10s",
            "group_interval": "1m",
            "repeat_interval": "1h",
            "routes": routes,
        },
        "receivers": [_am_receiver(p) for p in (config.lead, *config.coordinators)],
    }
