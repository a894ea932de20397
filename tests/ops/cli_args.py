"""What the real ``shouwang`` CLI makes of a command line, without running it: the deployment files' commands
(docker-compose.yml, deploy/systemd/) are checked against it."""

from __future__ import annotations

from typing import Any

from cli.main import app


def parse_with_the_cli(args: list[str]) -> tuple[str, dict[str, Any]]:
    """The command path and parameters of ``shouwang ARGS``; the CLI's own usage error if it refuses them."""
    from typer.main import get_command

    command = get_command(app)
    context = command.make_context("shouwang", list(args))
    while hasattr(command, "resolve_command"):  # a group: descend into the subcommand
        name, command, rest = command.resolve_command(context, [*context._protected_args, *context.args])
        context = command.make_context(name, rest, parent=context)
    return context.command_path, context.params
