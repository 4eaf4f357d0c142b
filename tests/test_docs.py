"""The documents are run: README.md and docs/*.md cannot drift from the code.

Which code blocks run (the convention README.md states under "Documentation"):

- ```` ```console ````: runnable offline. A line starting with ``$ `` is a command for
  bash (a line ending in ``\\`` continues on the next one); it must exit 0 (show
  another status with ``; echo "exit $?"``). Every other line is expected output: the
  lines must occur, in this order, among the lines the command prints (stdout and
  stderr), each within one output line; ``...`` stands for any text, so a line of
  only ``...`` is just a visible gap.
- ```` ```sql ````: every statement is executed on the SQLite archive the console
  blocks built, at that point of the reading order.
- anything else (``sh``, ``cron``, ``ini``, ``text``, ``python``, ...) is shown only:
  it needs the network, root, systemd, cron, a long-running server, or it is the
  setup or test command itself.

The blocks run once per module session, in reading order (README.md, then docs/*.md
in the order the README links them), in a scratch folder laid out like the repository
root for a reader (``scrapy.cfg`` and ``seeds/`` linked in), with this virtualenv's
``bin`` first on ``PATH`` (as ``. .venv/bin/activate`` would), ``DATABASE_URL`` a fresh
SQLite file there, and ``REPLAY_DIR`` an empty fixture folder, so a crawl whose
command forgot to name its seeds fetches nothing rather than the live site (the
commands name their seeds: ``REPLAY_DIR=seeds/maeil_ilbo scrapy crawl maeil_ilbo``).
Each test then checks one block. The other tests hold the README's length, the
links and anchors, the columns archive.md names, the defaults and environment
variables that settings tables state, and what operations.md's Scrapyd call sends.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def reading_order() -> list[Path]:
    """README.md, then the docs in the order the README links them, then any other."""
    linked = re.findall(r"\]\((docs/[^)#\s]+\.md)", README.read_text("utf-8"))
    documents = [README]
    for path in [*(ROOT / name for name in linked), *sorted((ROOT / "docs").glob("*.md"))]:
        if path.exists() and path not in documents:
            documents.append(path)
    return documents


DOCUMENTS = reading_order()
README_MAX_LINES = 160
# Written by another change; linked from the README before it lands.
EXPECTED_DOCUMENTS = {ROOT / "docs" / "adding-a-site.md"}
RUNNABLE = ("console", "sql")
COMMAND_SECONDS = 300
# Linked into the scratch folder: what a command run "from the repository root" reads.
CHECKOUT_ENTRIES = ("scrapy.cfg", "seeds")

FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^`]*)$")
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)|^\[[^\]]+\]:\s*(?P<reference>\S+)", re.M)


@dataclass(frozen=True)
class Block:
    """A fenced code block: its document, first line (1-based), language and text."""

    document: Path
    line: int
    language: str
    text: str

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


@dataclass(frozen=True)
class Command:
    """A ``$`` command of a console block and the output lines shown under it."""

    text: str
    expected: tuple[str, ...]


@dataclass
class Outcome:
    """What running a block gave: one message per problem found."""

    problems: list[str] = field(default_factory=list)


def code_blocks(document: Path) -> list[Block]:
    """Every fenced block of a Markdown document, nested ones (in lists) included."""
    blocks = []
    lines = document.read_text("utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent = len(opening["indent"])
        body = []
        index += 1
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index][indent:])
            index += 1
        language = opening["info"].strip().split(" ")[0]
        blocks.append(Block(document, index - len(body), language, "\n".join(body)))
        index += 1
    return blocks


def console_commands(block: Block) -> list[Command]:
    """The commands of a console block with the output lines shown after each."""
    commands: list[Command] = []
    text: list[str] = []
    expected: list[str] = []
    continued = False
    for line in block.text.splitlines():
        if continued:
            text.append(line)
            continued = line.endswith("\\")
        elif line.startswith("$ "):
            if text:
                commands.append(Command("\n".join(text), tuple(expected)))
            text, expected = [line[2:]], []
            continued = line.endswith("\\")
        elif text:
            if line.strip():
                expected.append(line.rstrip())
        else:
            raise ValueError(f"{block.name}: output before the first `$ ` command: {line!r}")
    if text:
        commands.append(Command("\n".join(text), tuple(expected)))
    return commands


def sql_statements(block: Block) -> list[str]:
    statements: list[str] = []
    pending = ""
    for line in block.text.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip() and not all(
        part.strip().startswith("--") for part in pending.strip().splitlines()
    ):
        statements.append(pending.strip())
    return statements


def output_problem(expected: tuple[str, ...], output: str) -> str | None:
    """None when the expected lines occur in order in `output`, else what is missing."""
    lines = output.splitlines()
    position = 0
    for pattern in expected:
        if pattern.strip() == "...":
            continue
        # The spaces beside a `...` only set it apart: `... «초협력» ...` matches `«초협력»하고`.
        parts = re.split(r" *\.\.\. *", pattern)
        matcher = re.compile(".*".join(re.escape(part) for part in parts))
        while position < len(lines) and not matcher.search(lines[position]):
            position += 1
        if position == len(lines):
            return f"expected output line not found (in order): {pattern!r}"
        position += 1
    return None


RUNNABLE_BLOCKS = [
    block for document in DOCUMENTS for block in code_blocks(document) if block.language in RUNNABLE
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A scratch repository root for a reader, and the environment of its shell."""
    folder = tmp_path_factory.mktemp("reader")
    for name in CHECKOUT_ENTRIES:
        (folder / name).symlink_to(ROOT / name)
    nowhere = folder / ".no-seeds"
    nowhere.mkdir()
    (nowhere / "manifest.jsonl").write_text("", encoding="utf-8")
    dropped = ("SCRAPY_SETTINGS_MODULE", "SCRAPY_PROJECT", "WARC_DIR", "WARC_ENABLED")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        DATABASE_URL=f"sqlite:///{folder / 'archive.db'}",
        REPLAY_DIR=str(nowhere),
        COLUMNS="120",
        LANG="C.UTF-8",
        PYTHONIOENCODING="utf-8",
    )
    return folder, env


@pytest.fixture(scope="module")
def outcomes(workspace: tuple[Path, dict[str, str]]) -> dict[str, Outcome]:
    """Every runnable block run once, in reading order; its problems by block name."""
    folder, env = workspace
    results = {}
    for block in RUNNABLE_BLOCKS:
        outcome = Outcome()
        if block.language == "console":
            for command in console_commands(block):
                outcome.problems += run_command(command, folder, env)
        else:
            outcome.problems += run_sql(block, folder / "archive.db")
        results[block.name] = outcome
    return results


def run_command(command: Command, folder: Path, env: dict[str, str]) -> list[str]:
    try:
        result = subprocess.run(
            ["bash", "-c", command.text],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=COMMAND_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [f"$ {command.text}\ntook over {COMMAND_SECONDS} s"]
    output = result.stdout.decode("utf-8", errors="replace")
    problems = []
    if result.returncode != 0:
        problems.append(f"exited {result.returncode}")
    missing = output_problem(command.expected, output)
    if missing:
        problems.append(missing)
    if problems:
        return [f"$ {command.text}\n" + "\n".join(problems) + f"\n--- output:\n{output[-4000:]}"]
    return []


def run_sql(block: Block, database: Path) -> list[str]:
    if not database.exists():
        return [f"no archive at {database} to run the SQL on: no console block crawled"]
    problems = []
    connection = sqlite3.connect(database)
    try:
        for statement in sql_statements(block):
            try:
                connection.execute(statement).fetchall()
            except sqlite3.Error as error:
                problems.append(f"{statement}\n-> {error}")
    finally:
        connection.close()
    return problems


@pytest.mark.parametrize("block", RUNNABLE_BLOCKS, ids=lambda block: block.name)
def test_block_runs_as_shown(block: Block, outcomes: dict[str, Outcome]) -> None:
    problems = outcomes[block.name].problems
    assert not problems, f"{block.name}:\n" + "\n\n".join(problems)


SHOWN_SHELL_BLOCKS = [
    block for document in DOCUMENTS for block in code_blocks(document) if block.language == "sh"
]


@pytest.mark.parametrize("block", SHOWN_SHELL_BLOCKS, ids=lambda block: block.name)
def test_shown_shell_blocks_parse(block: Block) -> None:
    """The `sh` blocks are not run, but bash must be able to read them (quoting,
    continuation lines)."""
    checked = subprocess.run(
        ["bash", "-n"], input=block.text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, f"{block.name}: {checked.stderr}"


def test_documents_show_runnable_commands() -> None:
    """The convention is in use: the README shows a crawl that the tests run."""
    readme_commands = [
        command.text
        for block in RUNNABLE_BLOCKS
        if block.document == README and block.language == "console"
        for command in console_commands(block)
    ]
    assert any("scrapy crawl" in command for command in readme_commands)


def test_output_patterns_match_in_order_and_can_fail() -> None:
    output = "id  site\n1   maeil_ilbo  title «합종연횡» here\nexit 3\n"
    assert output_problem(("id  site", "1 ... «합종연횡» ...", "exit 3"), output) is None
    assert output_problem(("exit 3", "id  site"), output) is not None
    assert output_problem(("exit 0",), output) is not None


def test_readme_stays_short() -> None:
    lines = len(README.read_text("utf-8").splitlines())
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def _anchors(document: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    anchors = set()
    for line in document.read_text("utf-8").splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_point_at_files(document: Path) -> None:
    broken = []
    for match in LINK.finditer(document.read_text("utf-8")):
        target = match["target"] or match["reference"]
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:
        path_text, _, anchor = target.partition("#")
        path = document
        if path_text:
            path = (document.parent / urllib.parse.unquote(path_text)).resolve()
        if not path.exists():
            if path not in EXPECTED_DOCUMENTS:
                broken.append(f"{target}: no file {path}")
            continue
        if anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {path.name}")
    assert not broken, f"{document.name}: " + "; ".join(broken)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_per_site_table(document: Path) -> None:
    """What each site reads, and from where, is written once, in its site module's
    docstring: no document keeps a table with a column per site (a third copy)."""
    sites = ("매일일보", "SKT", "maeil_ilbo", "skt_insight")
    per_site_headers = [
        line
        for line in document.read_text("utf-8").splitlines()
        if line.startswith("|") and sum(f"| {site}" in line for site in sites) >= 2
    ]
    assert not per_site_headers, f"{document.name}: a table per site: {per_site_headers}"


# ------------------------------------------------------------------ settings tables


@dataclass(frozen=True)
class SettingRow:
    document: Path
    name: str
    environment: bool
    default: str | None  # the first code span of the default cell, if it starts with one


def settings_rows() -> list[SettingRow]:
    """Rows of every Markdown table whose header has `setting` and `default` columns."""
    rows = []
    for document in DOCUMENTS:
        header: list[str] | None = None
        for line in document.read_text("utf-8").splitlines():
            if not line.startswith("|"):
                header = None
                continue
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if header is None:
                header = [cell.lower() for cell in cells]
                continue
            if set(cells) <= {"---", ":---", "---:"} or not {"setting", "default"} <= set(header):
                continue
            row = dict(zip(header, cells, strict=False))
            name = re.fullmatch(r"`([A-Z][A-Z0-9_]*)`", row["setting"])
            if name is None:
                continue
            default = re.match(r"`([^`]*)`", row["default"])
            rows.append(
                SettingRow(
                    document,
                    name[1],
                    row.get("env", "") == "env",
                    default[1] if default else None,
                )
            )
    return rows


def project_settings(environment: dict[str, str]) -> dict[str, str | None]:
    """The project's settings (over Scrapy's defaults) as a fresh process sees them
    with `environment`: str() of each value, None when unset."""
    script = (
        "import json, sys\n"
        "from scrapy.utils.project import get_project_settings\n"
        "settings = get_project_settings()\n"
        "names = json.loads(sys.argv[1])\n"
        "print(json.dumps({n: None if settings.get(n) is None else str(settings.get(n))"
        " for n in names}))\n"
    )
    names = sorted({row.name for row in settings_rows()})
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in names and not key.startswith("SCRAPY_")
    }
    env.update(environment, SCRAPY_SETTINGS_MODULE="news_archive.crawler.settings")
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(names)],
        cwd=ROOT.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def default_settings() -> dict[str, str | None]:
    return project_settings({})


def test_settings_tables_state_the_defaults(default_settings: dict[str, str | None]) -> None:
    rows = settings_rows()
    assert {"DATABASE_URL", "REPLAY_DIR", "WARC_DIR", "WARC_ENABLED", "INCREMENTAL"} <= {
        row.name for row in rows if row.document == README
    }
    wrong = []
    for row in rows:
        actual = default_settings[row.name]
        where = f"{row.document.name}: {row.name}"
        if actual is None and row.default is not None:
            wrong.append(f"{where} is documented as `{row.default}` but is unset")
        elif row.default is not None and row.default != actual:
            wrong.append(f"{where} is documented as `{row.default}`, but is {actual!r}")
    assert not wrong, "\n".join(wrong)


def test_environment_variables_documented_as_such_are_read(
    default_settings: dict[str, str | None],
) -> None:
    """A setting marked `env` takes its value from the environment variable: with every
    such variable set to "0", each of those settings differs from its default."""
    marked = sorted({row.name for row in settings_rows() if row.environment})
    assert marked
    changed = project_settings(dict.fromkeys(marked, "0"))
    ignored = [name for name in marked if changed[name] == default_settings[name]]
    assert not ignored, f"documented as environment variables but not read: {ignored}"


# ------------------------------------------------------------------ Scrapyd's schedule call


class _FormRecorder(BaseHTTPRequestHandler):
    forms: ClassVar[list[list[tuple[str, str]]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.forms.append(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        body = b'{"status": "ok", "jobid": "recorded"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def form_recorder() -> Iterator[tuple[str, list[list[tuple[str, str]]]]]:
    """A local HTTP server that records the forms POSTed to it (no Scrapyd needed to
    check what a `curl` line sends)."""
    _FormRecorder.forms = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FormRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", _FormRecorder.forms
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_scrapyd_schedule_command_sends_settings_intact(
    form_recorder: tuple[str, list[list[tuple[str, str]]]],
) -> None:
    """operations.md's `curl .../schedule.json` lines, sent to a local recorder instead
    of Scrapyd: every `setting=NAME=VALUE` arrives as written (a `+` in a database URL
    sent with plain `-d` arrives as a space, and the job then fails)."""
    base_url, forms = form_recorder
    schedule_calls = []
    for block in code_blocks(ROOT / "docs" / "operations.md"):
        joined = block.text.replace("\\\n", " ")
        schedule_calls += [
            line.strip()
            for line in joined.splitlines()
            if line.strip().startswith("curl") and "schedule.json" in line
        ]
    assert schedule_calls, "operations.md shows no `curl .../schedule.json` call"
    for call in schedule_calls:
        written = re.findall(r"setting=([A-Z_]+=[^\s'\"]+)", call)
        local = call.replace("http://127.0.0.1:6800/", base_url)
        subprocess.run(["bash", "-c", local], capture_output=True, timeout=30, check=True)
        sent = [value for name, value in forms[-1] if name == "setting"]
        assert sent == written, f"{call}\nsent settings {sent}, written {written}"


# ------------------------------------------------------------------ the tables named


def test_archive_tables_name_existing_columns(
    workspace: tuple[Path, dict[str, str]], outcomes: dict[str, Outcome]
) -> None:
    """Every column archive.md's table of tables names exists in the archive the
    console blocks built (so a renamed column cannot stay documented)."""
    database = sqlite3.connect(workspace[0] / "archive.db")
    try:
        wrong = []
        text = (ROOT / "docs" / "archive.md").read_text("utf-8")
        section = text.split("## Tables", 1)[1].split("\n## ", 1)[0]
        for line in section.splitlines():
            row = re.match(r"\| `(?P<table>[a-z_]+)` \| (?P<cells>.*) \|$", line)
            if row is None:
                continue
            columns = {
                name for _, name, *_ in database.execute(f"PRAGMA table_info({row['table']})")
            }
            if not columns:
                wrong.append(f"no table {row['table']}")
                continue
            named = set(re.findall(r"`([a-z_0-9]+)`", row["cells"]))
            wrong += [f"{row['table']}.{name}" for name in sorted(named - columns)]
    finally:
        database.close()
    assert not wrong, f"archive.md names what the schema lacks: {wrong}"
