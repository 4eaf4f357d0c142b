"""The distribution as a user installs it: a wheel (``pip install .``, pipx) in a
fresh virtual environment, run from an empty directory far from the checkout.

The fresh environment gets the project's dependencies from the test environment's
site-packages through a path entry (so no network is needed), but not the editable
install's import hook: site-packages reached that way run no ``.pth`` files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crawl.crawling import ROOT, SEEDS

TOP_LEVEL_FOLDERS = ("archive", "crawler", "storage", "migrations", "cli")
GENERIC_NAMES = {"archive", "crawler", "storage", "migrations", "archive_cli", "cli"}


def _declared_packages() -> tuple[list[str], dict[str, str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    return config["packages"], config["package-dir"]


def test_every_package_folder_of_the_checkout_is_declared() -> None:
    packages, package_dir = _declared_packages()
    folder_of = {package: folder for package, folder in package_dir.items()}
    found = set()
    for package, folder in folder_of.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *relative)))
    assert sorted(found) == sorted(packages)
    assert sorted(package_dir.values()) == sorted(TOP_LEVEL_FOLDERS)
    assert all(package.split(".")[0] == "news_archive" for package in packages)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv holding the wheel built from the checkout; yields its bin/."""
    # Built from a copy: an in-tree build leaves build/ and *.egg-info in the checkout.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", *TOP_LEVEL_FOLDERS):
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--no-build-isolation", "--wheel-dir", str(wheels), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = wheels.glob("news_archive-*.whl")
    environment = tmp_path_factory.mktemp("venv")
    venv.create(environment, with_pip=False)
    site_packages = Path(sysconfig.get_path("purelib", vars={"base": str(environment)}))
    # The dependencies, without the editable install's hook (no .pth runs from here).
    (site_packages / "dependencies.pth").write_text(
        sysconfig.get_path("purelib") + "\n", encoding="utf-8"
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(environment / "bin" / "python"),
         "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    yield environment / "bin"


def _run(bin_dir: Path, cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "SCRAPY_SETTINGS_MODULE", "DATABASE_URL", "WARC_DIR")
    }
    env |= {"DATABASE_URL": f"sqlite:///{cwd / 'archive.db'}", "WARC_ENABLED": "False"}
    return subprocess.run(
        [str(bin_dir / "news-archive"), *arguments],
        cwd=cwd, env=env | {"REPLAY_DIR": str(SEEDS / "maeil_ilbo")},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_the_installed_wheel_claims_one_import_name(installed: Path) -> None:
    site_packages = Path(sysconfig.get_path("purelib", vars={"base": str(installed.parent)}))
    names = {path.name for path in site_packages.iterdir()}
    assert not names & GENERIC_NAMES
    assert "news_archive" in names
    assert (site_packages / "news_archive" / "migrations" / "versions").is_dir()
    # Package data: `news-archive serve`'s Datasette metadata.
    assert (site_packages / "news_archive" / "storage" / "datasette.yaml").is_file()


def test_crawl_search_and_db_current_from_an_empty_directory(
    installed: Path, tmp_path: Path
) -> None:
    crawled = _run(installed, tmp_path, "crawl", "maeil_ilbo", "-L", "WARNING")
    assert crawled.returncode == 0, crawled.stderr
    found = _run(installed, tmp_path, "search", "합종연횡", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert [hit["url"] for hit in hits] == ["https://www.m-i.kr/news/articleView.html?idxno=714398"]
    current = _run(installed, tmp_path, "db", "current")
    assert current.returncode == 0, current.stderr
    assert "(head)" in current.stdout
    # The code that ran is the wheel's, not the checkout's.
    where = subprocess.run(
        [str(installed / "python"), "-c",
         "import news_archive.storage.engine as e; print(e.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert str(installed.parent) in where.stdout
    assert str(ROOT) not in where.stdout


def test_an_unknown_spider_is_a_one_line_error(installed: Path, tmp_path: Path) -> None:
    refused = _run(installed, tmp_path, "crawl", "no_such_site")
    assert refused.returncode == 2
    assert refused.stderr.startswith("news-archive: error: unknown site 'no_such_site'")
    assert not (tmp_path / "archive.db").exists()
