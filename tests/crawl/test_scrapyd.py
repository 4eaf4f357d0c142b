"""Scrapyd: ``scrapyd-deploy`` builds an egg with scrapy.cfg's ``[deploy]`` section,
a local Scrapyd (127.0.0.1, a free port) takes it, and a job scheduled through
``schedule.json`` crawls the 매일일보 replay fixtures into an archive migrated
beforehand from the checkout, and a job against an empty archive migrates it with the
Alembic scripts the egg carries (read from a temporary copy: Alembic needs a folder).

Skipped when scrapyd or scrapyd-client is not installed (both are in the ``test``
extra, so CI has them)."""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from news_archive.storage.engine import SCHEMA_REVISION, upgrade_to_head
from tests.crawl.crawling import ROOT, SEEDS, snapshot

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("scrapyd") is None
    or importlib.util.find_spec("scrapyd_client") is None,
    reason="scrapyd and scrapyd-client are not installed (pip install -e '.[test]')",
)

PROJECT = "news_archive"
MAEIL = "https://www.m-i.kr/news/articleView.html?idxno={}"
# What the egg is built from: the packaging inputs and the packages of the checkout.
EGG_SOURCES = (
    "scrapy.cfg",
    "pyproject.toml",
    "README.md",
    "archive",
    "crawler",
    "storage",
    "migrations",
    "cli",
)
STARTUP_SECONDS = 30.0
JOB_SECONDS = 120.0


@dataclass
class Scrapyd:
    """A running Scrapyd: its base URL and where it keeps job logs."""

    url: str
    logs_dir: Path

    def get(self, endpoint: str, **query: str) -> dict[str, Any]:
        address = f"{self.url}{endpoint}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(address, timeout=10) as response:
            return json.loads(response.read())

    def post(self, endpoint: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
        data = urllib.parse.urlencode(fields).encode()
        with urllib.request.urlopen(f"{self.url}{endpoint}", data=data, timeout=10) as response:
            return json.loads(response.read())

    def job_log(self, spider: str, job: str) -> str:
        path = self.logs_dir / PROJECT / spider / f"{job}.log"
        return path.read_text("utf-8", errors="replace") if path.exists() else "(no job log)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _clean_environment() -> dict[str, str]:
    """This process's environment without anything that would point a job at another
    database, fixture directory or settings module, and with WARC capture off."""
    dropped = ("DATABASE_URL", "REPLAY_DIR", "WARC_DIR", "SCRAPY_SETTINGS_MODULE", "SCRAPY_PROJECT")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env["WARC_ENABLED"] = "0"
    return env


@pytest.fixture(scope="module")
def scrapyd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrapyd]:
    """Scrapyd on 127.0.0.1 and a free port, run from an empty directory (so neither
    its jobs nor Scrapy find the checkout: jobs import the project from the egg);
    terminated at the end of the module."""
    home = tmp_path_factory.mktemp("scrapyd")
    port = _free_port()
    logs_dir = home / "logs"
    (home / "scrapyd.conf").write_text(
        "[scrapyd]\n"
        "bind_address = 127.0.0.1\n"
        f"http_port = {port}\n"
        f"eggs_dir = {home / 'eggs'}\n"
        f"logs_dir = {logs_dir}\n"
        f"dbs_dir = {home / 'dbs'}\n"
        "items_dir =\n"
        "max_proc = 2\n"
        "poll_interval = 0.5\n",
        encoding="utf-8",
    )
    output = (home / "scrapyd.out").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "scrapyd"],
        cwd=home,
        env=_clean_environment(),
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        daemon = Scrapyd(f"http://127.0.0.1:{port}/", logs_dir)
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"scrapyd exited {process.returncode}:\n{_read(home / 'scrapyd.out')}"
                )
            try:
                if daemon.get("daemonstatus.json")["status"] == "ok":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"scrapyd did not answer:\n{_read(home / 'scrapyd.out')}")
            time.sleep(0.2)
        yield daemon
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        output.close()


def _read(path: Path) -> str:
    return path.read_text("utf-8", errors="replace")


def _deploy_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "scrapyd_client.deploy", *arguments]


@pytest.fixture(scope="module")
def deployed(scrapyd: Scrapyd, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the egg with ``scrapyd-deploy --build-egg`` and upload it with
    ``scrapyd-deploy --egg``, both with the checkout's scrapy.cfg (its [deploy] URL
    pointed at this Scrapyd's port); returns the egg.

    Built from a copy of the checkout: scrapyd-deploy writes a setup.py, build/ and
    an .egg-info folder next to scrapy.cfg, which must not land in the shared tree."""
    source = tmp_path_factory.mktemp("checkout")
    for name in EGG_SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / name, source / name)
    config = configparser.ConfigParser()
    config.read(source / "scrapy.cfg", encoding="utf-8")
    assert config["deploy"]["url"] == "http://127.0.0.1:6800/"
    assert config["deploy"]["project"] == PROJECT
    config["deploy"]["url"] = scrapyd.url
    with (source / "scrapy.cfg").open("w", encoding="utf-8") as file:
        config.write(file)

    egg = tmp_path_factory.mktemp("egg") / f"{PROJECT}.egg"
    env = _clean_environment()
    built = subprocess.run(
        _deploy_command("--build-egg", str(egg)),
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0 and egg.is_file(), built.stderr
    with zipfile.ZipFile(egg) as archive:
        names = archive.namelist()
        entry_points = archive.read("EGG-INFO/entry_points.txt").decode()
    assert {
        "news_archive/crawler/settings.py",
        "news_archive/storage/engine.py",
        "news_archive/cli/main.py",
    } <= set(names)
    # Only the one import name: nothing generic such as `crawler/` at the egg's top.
    assert {name.split("/")[0] for name in names} == {"news_archive", "EGG-INFO"}
    # Scrapyd finds the settings module through this entry point (pyproject.toml).
    assert "[scrapy]\nsettings = news_archive.crawler.settings" in entry_points

    uploaded = subprocess.run(
        _deploy_command("--egg", str(egg), "--version", "1"),
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    response = json.loads(uploaded.stdout)
    assert response["status"] == "ok", response
    assert response["project"] == PROJECT
    assert {"maeil_ilbo", "skt_insight"} <= set(
        scrapyd.get("listspiders.json", project=PROJECT)["spiders"]
    )
    return egg


def _run_job(scrapyd: Scrapyd, spider: str, settings: dict[str, str]) -> str:
    """Schedule `spider` with `settings`, wait until Scrapyd lists it as finished
    (Scrapyd reports no exit status), and return its log."""
    fields = [("project", PROJECT), ("spider", spider)]
    fields += [("setting", f"{name}={value}") for name, value in settings.items()]
    scheduled = scrapyd.post("schedule.json", fields)
    assert scheduled["status"] == "ok", scheduled
    job = scheduled["jobid"]
    deadline = time.monotonic() + JOB_SECONDS
    while True:
        jobs = scrapyd.get("listjobs.json", project=PROJECT)
        if any(entry["id"] == job for entry in jobs["finished"]):
            return scrapyd.job_log(spider, job)
        if time.monotonic() > deadline:
            raise AssertionError(
                f"job {job} not finished after {JOB_SECONDS:.0f} s:\n{scrapyd.job_log(spider, job)}"
            )
        time.sleep(0.5)


def test_a_scheduled_job_crawls_into_an_archive_migrated_beforehand(
    scrapyd: Scrapyd, deployed: Path, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'archive.db'}"
    upgrade_to_head(database_url)  # from the checkout: the egg cannot migrate
    log = _run_job(
        scrapyd,
        "maeil_ilbo",
        {
            "REPLAY_DIR": str(SEEDS / "maeil_ilbo"),
            "DATABASE_URL": database_url,
            "WARC_ENABLED": "False",
        },
    )
    stored = snapshot(database_url)
    assert sorted(stored.site("maeil_ilbo")) == sorted(
        MAEIL.format(i) for i in (714398, 800101, 800102, 800103, 800104)
    ), log
    assert [(run["spider"], run["finish_reason"]) for run in stored.runs] == [
        ("maeil_ilbo", "finished")
    ], log


def test_a_job_migrates_an_empty_archive_with_the_eggs_scripts(
    scrapyd: Scrapyd, deployed: Path, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'archive.db'}"
    log = _run_job(
        scrapyd,
        "maeil_ilbo",
        {
            "REPLAY_DIR": str(SEEDS / "maeil_ilbo"),
            "DATABASE_URL": database_url,
            "WARC_ENABLED": "False",
        },
    )
    # The egg's code migrated, from a copy of the scripts inside the egg.
    assert "Migrations read from a temporary copy of the packaged scripts" in log, log
    stored = snapshot(database_url)
    assert len(stored.site("maeil_ilbo")) == 5, log
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            assert revision.scalar_one() == SCHEMA_REVISION
    finally:
        engine.dispose()
