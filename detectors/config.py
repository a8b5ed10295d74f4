"""Detector thresholds in one place, each with the evidence it rests on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DetectorConfig:
    # Cross-sectional jump: robust SDs above the other regions' rises (points/hour) at the same release,
    # and at least this many points above their median rise. Turkistan 12:00 2022 scores 7.0.
    # To alert, the region's change of pace (its rate minus its own pace before) must also be
    # jump_z_warning robust SDs above the others' changes; else it keeps its own pace: info. Abai
    # 14:00 2022 scores 3.7; Almaty Region 18:00 2022 1.0 (7.1 -> 7.9 points/h while others slowed).
    jump_z_warning: float = 3.0
    jump_z_critical: float = 5.0
    jump_min_excess_points: float = 2.0
    jump_min_peers: int = 5
    jump_scale_floor: float = 0.5  # points/hour
    jump_relative_floor: float = 0.1  # of the peers' median rate: the morning rush is noisy
    # A cross-sectional jump whose excess the region's own past curve explains by more than this share
    # is its habit (2023 North Kazakhstan 16:00): noted as info, not alerted.
    habit_share: float = 0.5
    # Expected-curve jump: robust SDs of the region's excess over its own past curve, vs other regions.
    # 4.5, not 3.5: on synthetic clean days 3.5 raised 0.5 false alerts a day and caught no extra surge.
    curve_z_warning: float = 4.5
    curve_z_critical: float = 5.0
    curve_min_excess_points: float = 5.0
    # Falling turnout: any fall is impossible; a fall of this many points is critical.
    falling_critical_points: float = 1.0
    # After polls close only late reports arrive: the nation gained 0.10-0.12 points 20:00 -> 22:00 in
    # 2022 and 2023. A region gaining more than this (and 3x the regions' median) did more than report late.
    after_close_allowance_points: float = 0.5
    after_close_info_points: float = 0.3
    after_close_critical_points: float = 2.0
    # A release that holds a region's last open hour (its own close falls inside the interval): the
    # last hour of voting is busier than those before it. 2023's west gained in its last hour what it had
    # gained in the two hours before (Atyrau +1.01 after +1.03), twice its pace per hour.
    last_hour_pace_factor: float = 2.0
    # National figure vs the registered-weighted mean of the regions: 0.01 apart in 2023 (exact
    # weights), 0.14 in 2022 (2023's weights). Needs this share of registered voters reported.
    national_warning_points: float = 0.5
    national_critical_points: float = 2.0
    national_min_coverage: float = 0.95
    # Official above observed: the observers' ratio estimate needs this many stations in the region;
    # the official figure must be above it by at least the points and standard errors given.
    observed_min_stations: int = 10
    observed_min_gap_points: float = 2.0
    observed_z_warning: float = 3.5
    observed_critical_gap_points: float = 5.0
    observed_z_critical: float = 4.0
    # Protocol above tally: an observer may miss a few voters; beyond max(voters, share of the list)
    # the commission's figure is above what was counted. Critical from this share of the list.
    protocol_min_voters: float = 10.0
    protocol_min_share: float = 0.02
    protocol_critical_share: float = 0.05
