"""The watch room's Grafana dashboards, as code (Grafana Foundation SDK builders).

`watch_room()` is the screen the room watches all day: turnout per region with each CEC release
marked, the region x release grid of increments coloured by how unusual they are (robust z against
the other regions), active flags, official vs observed with the observers' interval, each region's
polls (open or closed now, and when they close, on the region's own clock) with the rise each region
reported after its own close, and the health of scraping, intake and pipeline. `region_drilldown()`
is one region on one screen (template variable), its polls among them.
Every PromQL expression is listed by `expressions()` so a test can run each on a real Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, statushistory, table, timeseries
from grafana_foundation_sdk.builders.dashboard import (
    AnnotationQuery,
    Dashboard,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models.dashboard import (
    AnnotationTarget,
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableHide,
    VariableRefresh,
)

from dashboards.alerts import DATASOURCE_UID, LATENCY_P95, sdk_json

DATASOURCE = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
E = 'election=~"$election"'
R = 'region="$region"'
OBSERVED = f"turnout_watch_region_observed_turnout_percent{{{E}}}"
SE = f"turnout_watch_region_observed_se_points{{{E}}}"
OBSERVED_R = f"turnout_watch_region_observed_turnout_percent{{{E}, {R}}}"
SE_R = f"turnout_watch_region_observed_se_points{{{E}, {R}}}"

# Every region on its own clock: `turnout_watch_region_polls_timestamp_seconds{edge}` holds the instants its
# polls open and close (until March 2024 Kazakhstan's west closed an hour after the capital).
REGION_POLLS = "turnout_watch_region_polls_timestamp_seconds"


def polls_now(selector: str = E) -> str:
    """0 polls not yet open in the region, 1 open, 2 closed: how many of its two edges `time()` has passed."""
    return f"sum by (election, region) (time() >= bool {REGION_POLLS}{{{selector}}})"


def closes_at(selector: str = E) -> str:
    """When the region's polls close, in ms (Grafana's date units)."""
    return f'max by (election, region) ({REGION_POLLS}{{edge="close", {selector}}}) * 1000'


#: Hours the region's polls close after the election's (the commission's clock): 1 in the west before 2024.
CLOSES_LATER = (
    f'(max by (election, region) ({REGION_POLLS}{{edge="close", {E}}}) '
    "- on (election) group_left "
    f'max by (election) (turnout_watch_election_polls_timestamp_seconds{{edge="close", {E}}})) / 3600'
)
_CLOSE = f'max by (election, region) ({REGION_POLLS}{{edge="close", {E}}})'
_AS_OF = f"max by (election, region) (turnout_watch_region_as_of_timestamp_seconds{{{E}}})"
_TURNOUT = f"max by (election, region) (turnout_watch_region_turnout_percent{{{E}}})"
#: Each region's rise since its own close: its latest figure, from a release after its polls closed, minus
#: its figure at the last release as of its close or before (the day's samples, through a subquery).
ROSE_AFTER_OWN_CLOSE = (
    f"({_TURNOUT} - on (election, region) "
    f"last_over_time(({_TURNOUT} and on (election, region) ({_AS_OF} <= on (election, region) {_CLOSE}))[1d:])) "
    f"and on (election, region) ({_AS_OF} > on (election, region) {_CLOSE})"
)
#: Value mappings for `polls_now`.
POLLS_STATES = ValueMap(
    options={
        str(value): ValueMappingResult(text=text, color=color, index=value)
        for value, (text, color) in enumerate((("not yet open", "blue"), ("open", "green"), ("closed", "text")))
    }
)


def _q(expr: str, legend: str = "", instant: bool = False, table_format: bool = False) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).datasource(DATASOURCE)
    if legend:
        query = query.legend_format(legend)
    if instant:
        query = query.instant()
    if table_format:
        query = query.format("table")  # type: ignore[arg-type]
    return query


def _by_name(name: str, display: str, **props: object) -> tuple[str, list[DynamicConfigValue]]:
    values = [DynamicConfigValue(id_val="displayName", value=display)]
    return name, values + [DynamicConfigValue(id_val=key, value=value) for key, value in props.items()]


def _polls_table() -> table.Panel:
    """Polls open or closed now per region, when they close, and how much later than the commission's close."""
    panel = (
        table.Panel()
        .title("Polls now per region (each on its own clock)")
        .description(
            "Polls open and close at the day's hours in each region's own time zone (07:00-20:00 local): until "
            "March 2024 Aktobe, Atyrau, West Kazakhstan, Mangystau and Kyzylorda closed at 21:00 capital time. "
            "'Closes' is the instant, on this dashboard's clock; the last column is hours after the commission's close."
        )
        .height(9)
        .span(14)
        .with_target(_q(polls_now(), instant=True, table_format=True).ref_id("A"))
        .with_target(_q(closes_at(), instant=True, table_format=True).ref_id("B"))
        .with_target(_q(CLOSES_LATER, instant=True, table_format=True).ref_id("C"))
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(DataTransformerConfig(id_val="organize", options={"excludeByName": {"Time": True}}))
    )
    for name, props in (
        _by_name("Value #A", "polls now", mappings=[POLLS_STATES]),
        _by_name("Value #B", "closes", unit="dateTimeAsIso"),
        _by_name("Value #C", "later than the commission's close by", unit="h"),
    ):
        panel = panel.override_by_name(name, props)
    return panel


def _thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def _variables(dashboard: Dashboard, with_region: bool) -> Dashboard:
    dashboard = dashboard.with_variable(
        QueryVariable("election")
        .label("Election")
        .datasource(DATASOURCE)
        .query("label_values(turnout_watch_region_turnout_percent, election)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True)
        .multi(False)
    )
    if with_region:
        dashboard = dashboard.with_variable(
            QueryVariable("region")
            .label("Region")
            .datasource(DATASOURCE)
            .query(f"label_values(turnout_watch_region_turnout_percent{{{E}}}, region)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .hide(VariableHide.DONT_HIDE)
        )
    return dashboard


def _release_marks() -> AnnotationQuery:
    """A mark on every graph when the national figure's "as of" changes: a CEC release arrived."""
    releases = _q(f'changes(turnout_watch_region_as_of_timestamp_seconds{{region="KZ", {E}}}[2m]) > 0')
    # Grafana takes a data source's own query as an annotation's target; the SDK types it as AnnotationTarget.
    target = cast("Builder[AnnotationTarget]", releases.ref_id("releases"))
    return (
        AnnotationQuery()
        .name("CEC releases")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("rgba(255, 255, 255, 0.6)")
        .target(target)
    )


def watch_room() -> Dashboard:
    d = (
        Dashboard("Turnout watch room")
        .uid("turnout-watch-room")
        .tags(["turnout-watch"])
        .refresh("30s")
        .time("now-24h", "now")
        .timezone("browser")
        .annotation(_release_marks())
    )
    d = _variables(d, with_region=False)
    d = (
        d.with_row(Row("Turnout"))
        .with_panel(
            timeseries.Panel()
            .title("Official turnout by region")
            .description("Percent of voters on the lists; KZ is the national figure. Marks: CEC releases.")
            .unit("percent")
            .min(0)
            .max(100)
            .height(10)
            .span(18)
            .with_target(_q(f"turnout_watch_region_turnout_percent{{{E}}}", "{{region}}"))
        )
        .with_panel(
            stat.Panel()
            .title("National turnout")
            .unit("percent")
            .height(10)
            .span(6)
            .with_target(_q(f'turnout_watch_region_turnout_percent{{region="KZ", {E}}}', "{{election}}"))
        )
        .with_row(Row("Increments"))
        .with_panel(
            statushistory.Panel()
            .title("Region x release: how unusual each rise was (robust z against the other regions)")
            .description("Green below 2, amber from 2, red from 3 (the cross-sectional jump detector's line).")
            .height(10)
            .span(16)
            .thresholds(_thresholds((None, "green"), (2, "orange"), (3, "red")))
            .with_target(_q(f"turnout_watch_region_jump_z{{{E}}}", "{{region}}"))
        )
        .with_panel(
            bargauge.Panel()
            .title("Latest rise, points")
            .unit("none")
            .height(10)
            .span(8)
            .with_target(_q(f"turnout_watch_region_delta_points{{{E}}}", "{{region}}", instant=True))
        )
        .with_row(Row("Flags"))
        .with_panel(
            table.Panel()
            .title("Flags raised in the last hour (minutes ago)")
            .description("The flags topic and `turnout-watch replay` print each flag's explanation.")
            .height(8)
            .span(16)
            .with_target(
                _q(
                    f"(time() - turnout_watch_region_last_flag_timestamp_seconds{{{E}}}) / 60 < 60",
                    instant=True,
                    table_format=True,
                )
            )
        )
        .with_panel(
            stat.Panel()
            .title("Flags by severity")
            .height(8)
            .span(8)
            .with_target(
                _q(
                    "sum by (severity) (max by (election, detector, severity) (turnout_watch_election_flags))",
                    "{{severity}}",
                    instant=True,
                )
            )
        )
        .with_row(Row("Official vs observed"))
        .with_panel(
            table.Panel()
            .title("Official vs observers' estimate (95% interval) at the latest hour with counts")
            .height(9)
            .span(16)
            .with_target(_q(f"turnout_watch_region_turnout_percent{{{E}}}", instant=True, table_format=True))
            .with_target(_q(f"turnout_watch_region_observed_turnout_percent{{{E}}}", instant=True, table_format=True))
            .with_target(
                _q(
                    f"{OBSERVED} - 1.96 * {SE}",
                    instant=True,
                    table_format=True,
                )
            )
            .with_target(
                _q(
                    f"{OBSERVED} + 1.96 * {SE}",
                    instant=True,
                    table_format=True,
                )
            )
            .with_target(_q(f"turnout_watch_region_observed_stations{{{E}}}", instant=True, table_format=True))
        )
        .with_panel(
            bargauge.Panel()
            .title("Official minus observed, points")
            .height(9)
            .span(8)
            .thresholds(_thresholds((None, "green"), (2, "orange"), (5, "red")))
            .with_target(_q(f"turnout_watch_region_official_minus_observed_points{{{E}}}", "{{region}}", instant=True))
        )
        .with_row(Row("Polls, on each region's own clock"))
        .with_panel(_polls_table())
        .with_panel(
            bargauge.Panel()
            .title("Rise since each region's own close, points")
            .description(
                "Latest figure (a release after the region's polls closed) minus its figure at the last release as "
                "of its close or before. Before March 2024 the west's 20:00 release came an hour before its close, "
                "so its 22:00 rise holds its last hour of voting (the closing detector allows for its own pace); "
                "elsewhere only late reports can add to it."
            )
            .unit("none")
            .decimals(2)
            .height(9)
            .span(10)
            .thresholds(_thresholds((None, "green"), (0.5, "orange"), (2, "red")))
            .with_target(_q(ROSE_AFTER_OWN_CLOSE, "{{region}}", instant=True))
        )
        .with_row(Row("Health"))
        .with_panel(
            stat.Panel()
            .title("Last CEC release (as of)")
            .unit("dateTimeAsIso")
            .height(5)
            .span(6)
            .with_target(_q("max(turnout_watch_scrape_last_release_as_of_timestamp_seconds) * 1000", instant=True))
        )
        .with_panel(
            stat.Panel()
            .title("Release overdue")
            .unit("s")
            .height(5)
            .span(6)
            .thresholds(_thresholds((None, "green"), (600, "orange"), (900, "red")))
            .with_target(_q("max(turnout_watch_scrape_release_overdue_seconds)", instant=True))
        )
        .with_panel(
            stat.Panel()
            .title("Release lag p95 (published -> Kafka)")
            .unit("s")
            .height(5)
            .span(6)
            .with_target(
                _q(
                    "histogram_quantile(0.95, sum by (le) (rate(turnout_watch_scrape_release_lag_seconds_bucket[1h])))",
                    instant=True,
                )
            )
        )
        .with_panel(
            stat.Panel()
            .title("Observed stations (latest hour, all regions)")
            .height(5)
            .span(6)
            .with_target(_q(f"sum(turnout_watch_region_observed_stations{{{E}}})", instant=True))
        )
        .with_panel(
            timeseries.Panel()
            .title("Scraper errors by reason")
            .unit("reqps")
            .height(7)
            .span(8)
            .with_target(_q("sum by (reason) (rate(turnout_watch_scrape_errors_total[5m]))", "{{reason}}"))
        )
        .with_panel(
            timeseries.Panel()
            .title("Observer counts at the intake")
            .unit("ops")
            .height(7)
            .span(8)
            .with_target(_q("sum by (outcome) (rate(turnout_watch_intake_counts_total[5m]))", "{{outcome}}"))
            .with_target(_q("sum(turnout_watch_intake_spool_depth)", "spooled"))
        )
        .with_panel(
            timeseries.Panel()
            .title("Pipeline latency p95 (Kafka -> flags and metrics)")
            .unit("s")
            .height(7)
            .span(8)
            .with_target(_q(LATENCY_P95, "{{stream}}"))
        )
    )
    return d


def region_drilldown() -> Dashboard:
    d = (
        Dashboard("Turnout watch: one region")
        .uid("turnout-watch-region")
        .tags(["turnout-watch"])
        .refresh("30s")
        .time("now-24h", "now")
        .annotation(_release_marks())
    )
    d = _variables(d, with_region=True)
    return (
        d.with_panel(
            timeseries.Panel()
            .title("$region: official turnout and the observers' estimate with its 95% interval")
            .unit("percent")
            .height(10)
            .span(24)
            .with_target(_q(f"turnout_watch_region_turnout_percent{{{E}, {R}}}", "official"))
            .with_target(_q(f"turnout_watch_region_observed_turnout_percent{{{E}, {R}}}", "observed"))
            .with_target(
                _q(
                    f"{OBSERVED_R} - 1.96 * {SE_R}",
                    "observed, lower 95%",
                )
            )
            .with_target(
                _q(
                    f"{OBSERVED_R} + 1.96 * {SE_R}",
                    "observed, upper 95%",
                )
            )
        )
        .with_panel(
            timeseries.Panel()
            .title("$region: rise per release (points) and robust z against the other regions")
            .height(8)
            .span(12)
            .with_target(_q(f"turnout_watch_region_delta_points{{{E}, {R}}}", "points"))
            .with_target(_q(f"turnout_watch_region_jump_z{{{E}, {R}}}", "z"))
        )
        .with_panel(
            table.Panel()
            .title("$region: flags (minutes ago)")
            .height(8)
            .span(12)
            .with_target(
                _q(
                    f"(time() - turnout_watch_region_last_flag_timestamp_seconds{{{E}, {R}}}) / 60",
                    instant=True,
                    table_format=True,
                )
            )
        )
        .with_panel(
            stat.Panel()
            .title("$region: polls now (its own clock) and when they close")
            .height(5)
            .span(12)
            .mappings([POLLS_STATES])
            .with_target(_q(polls_now(f"{E}, {R}"), "polls", instant=True).ref_id("A"))
            .with_target(_q(closes_at(f"{E}, {R}"), "closes", instant=True).ref_id("B"))
            .override_by_query("B", [DynamicConfigValue(id_val="unit", value="dateTimeAsIso")])
        )
        .with_panel(
            stat.Panel()
            .title("$region: observed stations and minutes since the last observer count")
            .height(5)
            .span(12)
            .with_target(_q(f"turnout_watch_region_observed_stations{{{E}, {R}}}", "stations", instant=True))
            .with_target(
                _q(
                    f"(time() - turnout_watch_region_last_observer_count_timestamp_seconds{{{E}, {R}}}) / 60",
                    "minutes since last count",
                    instant=True,
                )
            )
        )
    )


DASHBOARDS = {"watch-room": watch_room, "region": region_drilldown}


def build_json(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard model as Grafana's JSON (the SDK's encoder), ready for a provisioning folder."""
    data: dict[str, Any] = sdk_json(dashboard.build())
    return data


def expressions(model: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel and annotation of a dashboard JSON."""
    for panel in model.get("panels", []):
        for target in panel.get("targets") or []:
            if target.get("expr"):
                yield panel.get("title", ""), target["expr"]
    for annotation in (model.get("annotations") or {}).get("list", []):
        target = annotation.get("target") or {}
        if target.get("expr"):
            yield f"annotation {annotation.get('name')}", target["expr"]
