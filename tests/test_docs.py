"""The documentation is checked as code: every command in README.md and docs/ parses as the command
line takes it, every Python snippet compiles, every link leads to a file and heading that exist."""
from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import click
import pytest

from bcl_dali.command import cli
from tests.paths import REPO

PAGES = [REPO / "README.md", REPO / "ARCHITECTURE.md", *sorted((REPO / "docs").glob("*.md"))]
ENTRY = re.compile(r"(?:^|\s)(?:python3? cli\.py|bcl-dali|torchrun [^|]*?cli\.py)\s(.*)$")


def blocks(page: Path) -> list[tuple[str, str]]:
    """(language, text) of each fenced block."""
    return re.findall(r"(?ms)^```(\w*)\n(.*?)^```", page.read_text())


def commands(page: Path) -> list[list[str]]:
    """The arguments of every bcl-dali command in the page: in its shell blocks (continued lines joined,
    `&&` chains split) and in its inline code, where a closing `...` stands for further flags."""
    lines = [line for language, text in blocks(page) if not language
             for line in text.replace("\\\n", " ").splitlines()]
    text = re.sub(r"(?ms)^```.*?^```", "", page.read_text())
    inline = [span.removesuffix("...").strip() for span in re.findall(r"`([^`\n]+)`", text)]
    found = []
    for line in lines + inline:
        for part in line.split("&&"):
            match = ENTRY.search(part.strip())
            if match:
                found.append(shlex.split(match.group(1)))
    return found


def parse(arguments: list[str]) -> None:
    """Parse as `cli.py ARGUMENTS` would, down to the command, without running it."""
    command: click.Command = cli
    context = command.make_context("cli.py", list(arguments))
    while isinstance(command, click.Group):
        name, command, rest = command.resolve_command(context, [*context._protected_args, *context.args])
        context = command.make_context(name, rest, parent=context)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_command_parses(page):
    for arguments in commands(page):
        try:
            parse(arguments)
        except click.exceptions.ClickException as error:
            pytest.fail(f"{page.name}: cli.py {shlex.join(arguments)}: {error.format_message()}")


def test_the_pages_hold_the_main_commands():
    found = {arguments[0] for page in PAGES for arguments in commands(page) if arguments}
    assert {"train", "eval", "report", "show", "bench", "splits", "experiment"} <= found


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_python_snippet_compiles(page):
    for language, text in blocks(page):
        if language == "python":
            ast.parse(text)


def _anchors(page: Path) -> set[str]:
    return {re.sub(r"[^\w\- ]", "", heading.lower()).strip().replace(" ", "-")
            for heading in re.findall(r"(?m)^#+ (.*)$", page.read_text())}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_leads_somewhere(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if target.startswith("http"):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name} links to {target}"
        assert linked.is_relative_to(REPO), f"{page.name} links outside the repository: {target}"
        if anchor:
            assert anchor in _anchors(linked), f"{page.name} links to {target}: no such heading"


def test_the_readme_is_a_front_page():
    assert len((REPO / "README.md").read_text().splitlines()) <= 150
    assert all(f"docs/{page.name}" in (REPO / "README.md").read_text() for page in PAGES if page.parent.name == "docs")
