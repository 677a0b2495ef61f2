"""Every command's --help shows examples, and the examples work: each one parses (its flags exist, its values
are accepted), and those that need no AWS and no running deployment (list, cost, plan) run and succeed."""

from __future__ import annotations

import shlex

import click
import pytest
from click.testing import CliRunner

from emd_cli.main import cli

OFFLINE = ("list-supported-models", "cost", "plan")


def _commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], click.Command]:
    ctx = click.Context(group)
    found: dict[tuple[str, ...], click.Command] = {path: group}
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            found.update(_commands(command, (*path, name)))
        else:
            found[(*path, name)] = command
    return found


COMMANDS = _commands()


def examples(command: click.Command) -> list[list[str]]:
    """The `emd …` lines under the help's Example(s) heading, continuation lines joined, comments dropped."""
    lines, joined = f"{command.help or ''}\n{command.epilog or ''}".splitlines(), []
    in_examples = False
    for line in lines:
        text = line.strip()
        if text.startswith("Example"):
            in_examples = True
        elif in_examples and text.startswith("emd "):
            joined.append(text)
        elif in_examples and joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + " " + text
    return [shlex.split(line.split("#")[0])[1:] for line in joined]


def _split(args: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """('gitops', 'init'), ['--source', 's3'] for ['gitops', 'init', '--source', 's3']."""
    path: tuple[str, ...] = ()
    while len(path) < len(args) and (*path, args[len(path)]) in COMMANDS:
        path = (*path, args[len(path)])
    return path, args[len(path) :]


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=lambda p: " ".join(p) or "emd")
def test_every_help_has_examples_that_parse(path: tuple[str, ...]) -> None:
    found = examples(COMMANDS[path])
    assert found, f"emd {' '.join(path)} --help shows no example"
    for args in found:
        target, rest = _split(args)
        assert target, args
        # unknown options, bad values, a bad --region would raise here
        with COMMANDS[target].make_context(" ".join(("emd", *target)), list(rest)):
            pass


@pytest.mark.parametrize(
    "args",
    [
        args
        for path in [(), *((n,) for n in OFFLINE)]
        for args in examples(COMMANDS[path])
        if args[0] in OFFLINE
    ],
    ids=lambda a: " ".join(a)[:60],
)
def test_offline_examples_succeed(args: list[str], tmp_path) -> None:
    if args[0] == "plan" and "--no-synth" not in args:
        args = [*args, "--no-synth"]  # the synth itself is tested in test_cli_subprocess
    res = CliRunner().invoke(cli, args, env={"AWS_REGION": None, "AWS_DEFAULT_REGION": None})
    assert res.exit_code == 0, res.output
    assert "would refuse" not in res.output
