"""Who hears about what: coordinators' regions and channels -> contact points and notification policies.

One routing tree, rendered twice: Grafana contact points and notification policies (provisioning, via
the Grafana Foundation SDK's alerting types) and an Alertmanager configuration for teams that use
Prometheus rules. Every alert with a `region` label goes to that region's coordinators; everything
`severity="critical"` also goes to the watch-room lead, who also receives whatever matches no one.

The config file (TOML) names people and regions in any spelling the gazetteer knows; each person has
one or more of `email`, `telegram` (a chat id) and `webhook` (a URL), all of which are notified:

    [lead]
    name = "Watch-room lead"
    email = "lead@example.org"

    [[coordinator]]
    name = "South"
    regions = ["Turkistan Region", "Shymkent"]
    telegram = "-1001234567890"
    email = "south@example.org"

(`channel = "email"` with `address = "..."`, the older one-channel form, is still read.) How mail and
Telegram messages leave the machine, and the timings, are optional tables:

    [smtp]
    smarthost = "smtp.example.org:587"
    from = "turnout-watch@example.org"
    username = "turnout-watch"
    password_file = "/etc/turnout-watch/smtp-password"   # read by Alertmanager, never copied
    require_tls = true

    [telegram]
    bot_token_file = "/etc/turnout-watch/telegram-bot-token"
    api_url = "https://api.telegram.org"

    [timing]
    group_wait = "10s"           # Alertmanager/Grafana: first notification of a new group
    group_interval = "1m"        # ... of changes (new or resolved alerts) to a group
    repeat_interval = "1h"
    evaluation_interval = "15s"  # how often Prometheus evaluates the rules
    flag_window = "30m"          # a flag keeps TurnoutFlagRaised firing this long after it was raised

Secrets are never written into generated files. Alertmanager reads the SMTP password from
`password_file` itself (`smtp_auth_password_file`); Grafana reads the bot token with `$__file{...}`.
Alertmanager 0.25 (Debian 12) has no `bot_token_file`, so the generated alertmanager.yml carries a
placeholder and `write_runtime_alertmanager` writes the copy Alertmanager runs with (mode 0600, in the
deployment's data directory, not in the repository). See docs/alert-routing.md.
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from grafana_foundation_sdk.builders import alerting

from dashboards.alerts import sdk_json
from turnout_watch.core.errors import ConfigError, TurnoutWatchError
from turnout_watch.core.gazetteer import default_gazetteer

Channel = Literal["email", "telegram", "webhook"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)
#: What the generated alertmanager.yml holds where the Telegram bot token goes (Alertmanager 0.25 reads no file).
TELEGRAM_TOKEN_PLACEHOLDER = "from-telegram-bot_token_file"
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str, where: str = "duration") -> float:
    """A Prometheus duration ("90s", "1h30m") in seconds."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ConfigError(f"{where}: {text!r} is not a duration like 30s, 5m or 1h30m")
    return sum(int(n) * _SECONDS[u] for n, u in parts)


@dataclass(frozen=True)
class Contact:
    channel: Channel
    address: str  # e-mail address, Telegram chat id, or webhook URL


@dataclass(frozen=True)
class Person:
    name: str
    contacts: tuple[Contact, ...]
    regions: tuple[str, ...] = ()  # ISO codes; empty for the lead

    @property
    def receiver(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")

    def addresses(self, channel: Channel) -> list[str]:
        return [c.address for c in self.contacts if c.channel == channel]


@dataclass(frozen=True)
class Smtp:
    smarthost: str = "localhost:25"
    sender: str = "turnout-watch@localhost"
    username: str | None = None
    password_file: str | None = None
    require_tls: bool = False


@dataclass(frozen=True)
class Telegram:
    bot_token_file: str | None = None
    api_url: str | None = None


@dataclass(frozen=True)
class Timing:
    group_wait: str = "10s"
    group_interval: str = "1m"
    repeat_interval: str = "1h"
    evaluation_interval: str = "15s"
    flag_window: str = "30m"

    @property
    def flag_window_seconds(self) -> float:
        return duration_seconds(self.flag_window, "[timing] flag_window")


@dataclass(frozen=True)
class Coordinators:
    lead: Person
    coordinators: tuple[Person, ...]
    smtp: Smtp = field(default_factory=Smtp)
    telegram: Telegram = field(default_factory=Telegram)
    timing: Timing = field(default_factory=Timing)

    @property
    def people(self) -> tuple[Person, ...]:
        return (self.lead, *self.coordinators)

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
        config = cls(
            lead,
            people,
            _table(Smtp, raw.get("smtp", {}), f"{path}: [smtp]", {"from": "sender"}),
            _table(Telegram, raw.get("telegram", {}), f"{path}: [telegram]"),
            _table(Timing, raw.get("timing", {}), f"{path}: [timing]"),
        )
        for name in ("group_wait", "group_interval", "repeat_interval", "evaluation_interval", "flag_window"):
            duration_seconds(getattr(config.timing, name), f"{path}: [timing] {name}")
        if config.smtp.password_file and not config.smtp.username:
            raise ConfigError(f"{path}: [smtp] password_file needs a username")
        return config


def _table(kind: Any, raw: dict[str, Any], where: str, renamed: dict[str, str] | None = None) -> Any:
    """One optional table as its dataclass; `renamed` maps a file key to a field (`from` is a keyword)."""
    renamed = renamed or {}
    fields = set(kind.__dataclass_fields__)
    unknown = sorted(key for key in raw if renamed.get(key, key) not in fields)
    if unknown:
        spelled = {field: key for key, field in renamed.items()}
        known = ", ".join(sorted(spelled.get(f, f) for f in fields))
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {known}")
    return replace(kind(), **{renamed.get(key, key): value for key, value in raw.items()})


def _person(entry: dict[str, Any], where: str, regions: bool) -> Person:
    if "name" not in entry:
        raise ConfigError(f"{where}: missing 'name'")
    name = str(entry["name"])
    contacts: list[Contact] = []
    if "channel" in entry or "address" in entry:  # the one-channel form
        channel = entry.get("channel")
        if channel not in CHANNELS:
            raise ConfigError(f"{where}: channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
        if "address" not in entry:
            raise ConfigError(f"{where}: missing 'address'")
        contacts.append(Contact(channel, str(entry["address"])))
    for channel in CHANNELS:
        value = entry.get(channel, [])
        for address in value if isinstance(value, list) else [value]:
            contacts.append(Contact(channel, str(address)))
    if not contacts:
        raise ConfigError(f"{where} ({name}): give at least one of email, telegram, webhook")
    for contact in contacts:
        if contact.channel == "telegram" and not re.fullmatch(r"-?\d+", contact.address):
            raise ConfigError(f"{where} ({name}): a Telegram chat id is a number, got {contact.address!r}")
    codes: list[str] = []
    if regions:
        if not entry.get("regions"):
            raise ConfigError(f"{where} ({name}): list the regions this coordinator covers")
        for region in entry["regions"]:
            try:
                codes.append(default_gazetteer().resolve(str(region)).code)
            except TurnoutWatchError as exc:
                raise ConfigError(f"{where} ({name}): {exc}") from exc
    return Person(name, tuple(dict.fromkeys(contacts)), tuple(sorted(set(codes))))


def _region_regex(person: Person) -> str:
    return "|".join(person.regions)  # ISO codes hold only letters, digits and "-": nothing to escape


# -- Grafana -------------------------------------------------------------------------------------------


def _grafana_settings(contact: Contact, config: Coordinators) -> dict[str, Any]:
    if contact.channel == "email":  # the SMTP server and its password are grafana.ini's [smtp] (GF_SMTP_*)
        return {"addresses": contact.address, "singleEmail": False}
    if contact.channel == "telegram":
        token_file = config.telegram.bot_token_file
        token = f"$__file{{{token_file}}}" if token_file else "$__env{TELEGRAM_BOT_TOKEN}"
        return {"chatid": contact.address, "bottoken": token}
    return {"url": contact.address, "httpMethod": "POST"}


def grafana_contact_points(config: Coordinators) -> dict[str, Any]:
    """Contact-point provisioning (apiVersion 1): one contact point per person, one integration per contact."""
    points = []
    for person in config.people:
        receivers = []
        for n, contact in enumerate(person.contacts):
            uid = f"tw-{person.receiver}"[:37] + (f"-{n}" if n else "")
            cp = (
                alerting.ContactPoint()
                .uid(uid)
                .name(person.receiver)
                .type(contact.channel)
                .settings(_grafana_settings(contact, config))
                .disable_resolve_message(False)
                .build()
            )
            receivers.append({"uid": cp.uid, "type": cp.type_val, "settings": cp.settings})
        points.append({"orgId": 1, "name": person.receiver, "receivers": receivers})
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
    timing = config.timing
    return (
        alerting.NotificationPolicy()
        .receiver(config.lead.receiver)
        .group_by(["alertname", "election", "region"])
        .group_wait(timing.group_wait)
        .group_interval(timing.group_interval)
        .repeat_interval(timing.repeat_interval)
        .routes(routes)  # type: ignore[arg-type]
    )


def grafana_policies(config: Coordinators) -> dict[str, Any]:
    """Notification-policy provisioning (apiVersion 1) from the SDK's NotificationPolicy model."""
    return {"apiVersion": 1, "policies": [{"orgId": 1, **sdk_json(grafana_policy(config).build())}]}


# -- Alertmanager --------------------------------------------------------------------------------------


def _am_receiver(person: Person, config: Coordinators, telegram_token: str) -> dict[str, Any]:
    receiver: dict[str, Any] = {"name": person.receiver}
    if emails := person.addresses("email"):
        receiver["email_configs"] = [{"to": to, "send_resolved": True} for to in emails]
    if chats := person.addresses("telegram"):
        telegram: dict[str, Any] = {"bot_token": telegram_token, "send_resolved": True}
        if config.telegram.api_url:
            telegram["api_url"] = config.telegram.api_url
        receiver["telegram_configs"] = [{"chat_id": int(chat), **telegram} for chat in chats]
    if hooks := person.addresses("webhook"):
        receiver["webhook_configs"] = [{"url": url, "send_resolved": True} for url in hooks]
    return receiver


def alertmanager_config(config: Coordinators, telegram_token: str = TELEGRAM_TOKEN_PLACEHOLDER) -> dict[str, Any]:
    """An alertmanager.yml with the same tree (`amtool config routes test` checks who gets what).

    With the default `telegram_token` it holds no secret: the SMTP password stays in its file
    (`smtp_auth_password_file`) and the bot token is a placeholder `write_runtime_alertmanager` fills in.
    """
    routes: list[dict[str, Any]] = [
        {"receiver": config.lead.receiver, "matchers": ['severity="critical"'], "continue": True}
    ]
    for person in config.coordinators:
        routes.append(
            {"receiver": person.receiver, "matchers": [f'region=~"{_region_regex(person)}"'], "continue": True}
        )
    smtp = config.smtp
    mail: dict[str, Any] = {
        "smtp_smarthost": smtp.smarthost,
        "smtp_from": smtp.sender,
        "smtp_require_tls": smtp.require_tls,
    }
    if smtp.username:
        mail["smtp_auth_username"] = smtp.username
    if smtp.password_file:
        mail["smtp_auth_password_file"] = smtp.password_file
    timing = config.timing
    return {
        "global": mail,
        "route": {
            "receiver": config.lead.receiver,
            "group_by": ["alertname", "election", "region"],
            "group_wait": timing.group_wait,
            "group_interval": timing.group_interval,
            "repeat_interval": timing.repeat_interval,
            "routes": routes,
        },
        "receivers": [_am_receiver(p, config, telegram_token) for p in config.people],
    }


def write_runtime_alertmanager(config: Coordinators, path: Path) -> Path:
    """The alertmanager.yml Alertmanager runs with: the generated one plus the Telegram bot token.

    Alertmanager 0.25 reads the token only inline, so this copy (and only this one) holds it: written
    with mode 0600 to a deployment's data directory. Without Telegram contacts it equals the generated file.
    """
    password_file = config.smtp.password_file
    with contextlib.suppress(FileNotFoundError):  # may be mounted only where Alertmanager runs
        if password_file and Path(password_file).read_bytes().endswith(b"\n"):
            raise ConfigError(
                f"{password_file} ends with a newline, which Alertmanager 0.25 sends as part of the SMTP "
                f"password; write it with `printf '%s' PASSWORD > {password_file}`"
            )
    token = TELEGRAM_TOKEN_PLACEHOLDER
    if any(p.addresses("telegram") for p in config.people):
        if not config.telegram.bot_token_file:
            raise ConfigError("Telegram contacts need [telegram] bot_token_file in the coordinators file")
        try:
            token = Path(config.telegram.bot_token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"Telegram bot token: cannot read {config.telegram.bot_token_file}: {exc}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        yaml.safe_dump(alertmanager_config(config, telegram_token=token), out, sort_keys=False, allow_unicode=True)
    return path
