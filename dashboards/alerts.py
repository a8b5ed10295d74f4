"""Alert rules, defined once, rendered for Prometheus (Alertmanager teams) and for Grafana-managed alerting.

Each rule is a PromQL `query` whose value is compared with a `threshold`: Prometheus gets
`(query) OP threshold` as one expression; Grafana gets the query (A) and a threshold expression on it
(B). Labels of the query's series (`election`, `region`, `detector`, `severity`...) become the alert's
labels, so notification policies can route by `region` and `severity`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from grafana_foundation_sdk.builders import alerting, prometheus
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting as alerting_models

DATASOURCE_UID = "prometheus"
FOLDER_UID = "turnout-watch"
GROUP = "turnout-watch"

Op = Literal[">", "<"]
#: 95th percentile of Kafka -> flags/metrics latency per stream (a rule and a watch-room panel).
LATENCY_P95 = "histogram_quantile(0.95, sum by (le, stream) (rate(turnout_watch_event_latency_seconds_bucket[5m])))"


@dataclass(frozen=True)
class AlertRule:
    name: str
    query: str
    op: Op
    threshold: float
    summary: str
    description: str
    severity: str | None = None  # None: the severity label comes from the query's series
    for_: str = "0m"
    lookback_seconds: int = 600
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def expr(self) -> str:
        return f"({self.query}) {self.op} {self.threshold:g}"

    @property
    def uid(self) -> str:
        return "tw-" + "".join("-" + c.lower() if c.isupper() else c for c in self.name).strip("-")[:36]

    def all_labels(self) -> dict[str, str]:
        out = {"team": "watch-room", **self.labels}
        if self.severity:
            out["severity"] = self.severity
        return out


#: Polls open in the region now, on its own clock (until 2024 Kazakhstan's west closed an hour after the capital).
_POLLING = (
    "on (election, region) "
    '(max by (election, region) (turnout_watch_region_polls_timestamp_seconds{edge="open"}) < time()) '
    "and on (election, region) "
    '(max by (election, region) (turnout_watch_region_polls_timestamp_seconds{edge="close"}) > time())'
)

#: How long a raised flag keeps `TurnoutFlagRaised` firing (the coordinators file's `[timing] flag_window`).
FLAG_WINDOW_SECONDS = 1800.0


def alert_rules(flag_window_seconds: float = FLAG_WINDOW_SECONDS) -> tuple[AlertRule, ...]:
    """Every rule; a flag stays an alert for `flag_window_seconds`, then resolves (tests age flags out fast)."""
    return (_flag_rule(flag_window_seconds), *_HEALTH_RULES)


def _flag_rule(window: float) -> AlertRule:
    return AlertRule(
        name="TurnoutFlagRaised",
        # max_over_time bridges a worker's restart: its series are gone while it restarts and rebuilds
        # (seconds), and without the lookback every live alert would be "resolved", then fire again.
        query="time() - max by (election, region, detector, severity) "
        '(max_over_time(turnout_watch_region_last_flag_timestamp_seconds{severity=~"warning|critical"}[5m]))',
        op="<",
        threshold=window,
        summary="{{ $labels.severity }}: {{ $labels.detector }} in {{ $labels.region }}",
        description="A {{ $labels.severity }} {{ $labels.detector }} flag was raised for {{ $labels.region }} "
        "({{ $labels.election }}) {{ $value | humanizeDuration }} ago. The flags topic and the watch-room "
        "dashboard carry the numbers.",
    )


_HEALTH_RULES: tuple[AlertRule, ...] = (
    AlertRule(
        name="OfficialAboveObserved",
        # 3.5 standard errors, the detector's line: 1.96 pages a coordinator for one region in 20 by chance
        query="(turnout_watch_region_official_minus_observed_points - 3.5 * turnout_watch_region_observed_se_points) "
        "and on (election, region) (turnout_watch_region_observed_stations >= 10) "
        "and on (election, region) (turnout_watch_region_official_minus_observed_points >= 2)",
        op=">",
        threshold=0,
        severity="critical",
        summary="{{ $labels.region }}: official turnout above what observers counted",
        description="In {{ $labels.region }} ({{ $labels.election }}) the official figure is "
        '{{ $value | printf "%.1f" }} points beyond 3.5 standard errors above what observers counted.',
    ),
    AlertRule(
        name="CecReleaseOverdue",
        query="max by (source) (turnout_watch_scrape_release_overdue_seconds)",
        op=">",
        threshold=900,
        severity="warning",
        summary="CEC release overdue ({{ $labels.source }})",
        description="The release due from {{ $labels.source }} is {{ $value | humanizeDuration }} late.",
    ),
    AlertRule(
        name="ScraperFailing",
        query="sum by (source) (increase(turnout_watch_scrape_errors_total[10m]))",
        op=">",
        threshold=2,
        severity="warning",
        summary="CEC scraper failing ({{ $labels.source }})",
        description='{{ $value | printf "%.0f" }} failed requests or publishes in 10 minutes; see the '
        "scraper's log and turnout_watch_scrape_errors_total by reason.",
    ),
    AlertRule(
        name="NoObserverReports",
        query="(time() - max by (election, region) (turnout_watch_region_last_observer_count_timestamp_seconds)) "
        "and " + _POLLING,
        op=">",
        threshold=3600,
        severity="warning",
        summary="No observer reports from {{ $labels.region }} for an hour",
        description="Polls are open in {{ $labels.region }} (on its own clock) and its last observer count "
        "({{ $labels.election }}) arrived {{ $value | humanizeDuration }} ago.",
    ),
    AlertRule(
        name="PipelineLagging",
        query=LATENCY_P95,
        op=">",
        threshold=60,
        severity="warning",
        for_="2m",
        summary="Pipeline lagging ({{ $labels.stream }})",
        description="95% of {{ $labels.stream }} events took up to {{ $value | humanizeDuration }} from Kafka to "
        "flags and metrics.",
    ),
)
RULES: tuple[AlertRule, ...] = alert_rules()


def prometheus_rules(rules: tuple[AlertRule, ...] = RULES, interval: str = "15s") -> dict[str, Any]:
    """The Prometheus rule file (promtool check rules accepts it), evaluated every `interval`."""
    return {
        "groups": [
            {
                "name": GROUP,
                "interval": interval,
                "rules": [
                    {
                        "alert": r.name,
                        "expr": r.expr,
                        "for": r.for_,
                        "labels": r.all_labels(),
                        "annotations": {"summary": r.summary, "description": r.description},
                    }
                    for r in rules
                ],
            }
        ]
    }


def grafana_rule(rule: AlertRule) -> alerting.Rule:
    query = (
        alerting.Query("A")
        .datasource_uid(DATASOURCE_UID)
        .relative_time_range(alerting_models.RelativeTimeRange(from_val=rule.lookback_seconds, to=0))
        .model(prometheus.Dataquery().expr(rule.query).instant().ref_id("A"))
    )
    threshold = (
        alerting.Query("B").datasource_uid("__expr__").model(_ThresholdModel(rule))  # type: ignore[arg-type]
    )
    return (
        alerting.Rule(rule.name)
        .uid(rule.uid)
        .org_id(1)
        .folder_uid(FOLDER_UID)
        .rule_group(GROUP)
        .condition("B")
        .queries([query, threshold])
        .for_val(rule.for_)
        .no_data_state("OK")
        .exec_err_state("Error")
        .labels(rule.all_labels())
        .annotations({"summary": rule.summary, "description": rule.description})
    )


class _ThresholdModel:
    """Grafana's server-side threshold expression (the SDK types it as a plain JSON model)."""

    def __init__(self, rule: AlertRule) -> None:
        self.rule = rule

    def build(self) -> dict[str, Any]:
        return {
            "refId": "B",
            "type": "threshold",
            "expression": "A",
            "conditions": [
                {"evaluator": {"type": "gt" if self.rule.op == ">" else "lt", "params": [self.rule.threshold]}}
            ],
        }


def grafana_rules_provisioning(rules: tuple[AlertRule, ...] = RULES, interval: str = "15s") -> dict[str, Any]:
    """Grafana's alert-rule provisioning file (apiVersion 1) built from the SDK's rule models."""
    built = [sdk_json(grafana_rule(r).build()) for r in rules]
    return {
        "apiVersion": 1,
        "groups": [{"orgId": 1, "name": GROUP, "folder": "turnout-watch", "interval": interval, "rules": built}],
    }


def sdk_json(model: Any) -> Any:
    """An SDK model as plain JSON data, through the SDK's own encoder."""
    return json.loads(json.dumps(model, cls=JSONEncoder))
