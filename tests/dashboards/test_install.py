"""Installs like a real package: a wheel in a fresh venv runs the commands from an empty directory.

The wheel is built from the checkout and installed without its dependencies into a new venv that
borrows the project venv's site-packages through a `.pth` line (so nothing is downloaded and the
editable install's finder is not loaded). Commands then run from an empty directory: nothing they read
may come from the checkout, only from package data.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.support.paths import ROOT

pytestmark = pytest.mark.integration  # builds a wheel and a venv: about 15 s


def packages_on_disk() -> set[str]:
    found = set()
    for top in ("turnout_watch", "ingest", "streams", "detectors", "dashboards"):
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    return found


def test_every_package_on_disk_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert listed - {"turnout_watch.elections"} == packages_on_disk()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("install")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "wheel"), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp / "wheel").glob("turnout_watch-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(subprocess.check_output([venv / "bin" / "python", "-c", purelib], text=True).strip())
    (site / "borrowed-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return venv


def run(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TURNOUT_WATCH_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    return subprocess.run(
        [str(venv / "bin" / "turnout-watch"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_wheel_builds_the_dashboards_from_an_empty_directory(installed: Path, tmp_path: Path) -> None:
    where = subprocess.check_output(
        [installed / "bin" / "python", "-c", "import dashboards, turnout_watch; print(dashboards.__file__)"],
        cwd=tmp_path,
        text=True,
    )
    assert str(installed) in where and str(ROOT) not in where  # the wheel's copy, not the checkout's
    built = run(installed, tmp_path, "dashboards", "build", "--out", "generated")
    assert built.returncode == 0, built.stdout + built.stderr
    am = yaml.safe_load((tmp_path / "generated" / "alertmanager" / "alertmanager.yml").read_text())
    assert {r["name"] for r in am["receivers"]} >= {"watch-room-lead", "south", "almaty"}  # the shipped example
    assert (tmp_path / "generated" / "grafana" / "dashboards" / "watch-room.json").is_file()
    checked = run(installed, tmp_path, "dashboards", "build", "--check")  # the shipped generated files are fresh
    assert checked.returncode == 0 and "up to date" in checked.stdout, checked.stdout + checked.stderr


def test_the_wheel_detects_a_day_with_the_shipped_history(installed: Path, tmp_path: Path) -> None:
    site = subprocess.check_output(
        [
            installed / "bin" / "python",
            "-c",
            "from turnout_watch.core import settings; print(settings.SHIPPED_ELECTIONS)",
        ],
        cwd=tmp_path,
        text=True,
    ).strip()
    shipped = Path(site)
    assert str(installed) in site and sorted(p.name for p in shipped.glob("*.jsonl")) == [
        "kz-2022-11-20-presidential.jsonl",
        "kz-2023-03-19-majilis.jsonl",
    ]
    day = shipped / "kz-2022-11-20-presidential.jsonl"
    from_wheel = run(installed, tmp_path, "detect", str(day))
    assert from_wheel.returncode == 0, from_wheel.stdout + from_wheel.stderr
    in_checkout = subprocess.run(
        [str(Path(sys.executable).with_name("turnout-watch")), "detect", str(ROOT / "data" / "elections" / day.name)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert from_wheel.stdout == in_checkout.stdout  # the same flags, with the same history by default
    # synthetic days are drawn from the shipped ones (Template.from_shipped): fails without them
    evaluated = run(installed, tmp_path, "evaluate", "--days", "2", "--clean", "1", "--observers", "0")
    assert evaluated.returncode == 0 and "recall" in evaluated.stdout, evaluated.stdout + evaluated.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written where it ran
