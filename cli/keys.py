"""``shouwang keys issue``: an operator API key issued at the server's shell, straight into the store.

For what cannot ask the API for a key because it has none yet: the deployment's Prometheus, whose scrape of
the API's /metrics needs an operator key (docker-compose.yml's one-shot ``metrics-key`` job runs this), or an
operator whose first key is lost. Keys of the other roles are issued through the API (POST /v1/keys), which
checks their scope. The issue is on the audit trail as ``cli:<login>``, like the API's."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from cli.audit import _login

app = typer.Typer(no_args_is_help=True, help="API keys issued at the server's shell (operator keys only).")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"shouwang: {message}", err=True)
    return typer.Exit(code=1)


def _write_owner_only(path: Path, token: str) -> None:
    """The token in ``path``, readable by its owner only (mode 0600 before a byte is written), replaced whole:
    a reader never sees half a token."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask or a leftover file's mode
        with os.fdopen(descriptor, "w") as file:
            file.write(token + "\n")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


@app.command("issue")
def issue(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. prometheus (shown in the key list).")],
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="Write the token to this file (owner-only) instead of printing it. If the file already holds a "
            "valid operator key of this name, it is kept and nothing is issued: a job that runs at every start "
            "issues one key, not one per start.",
        ),
    ] = None,
) -> None:
    """Issue an operator API key: printed once on standard output, or written to --token-file."""
    from alerts.audit import Actor, record
    from alerts.db import Store
    from api.auth import AuthError, authenticate, issue_key
    from shouwang.settings import get_settings

    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise _fail("the name must have 1 to 200 characters")
    if token_file is not None and not token_file.parent.is_dir():
        raise _fail(f"--token-file: no such folder {token_file.parent}")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line of outcome, no migration chatter
    store = Store(get_settings().store_url)  # migrates the store if it is not current
    try:
        with store.transaction() as session:
            if token_file is not None and token_file.is_file():
                held = token_file.read_text().strip()
                try:
                    principal = authenticate(session, held)
                except AuthError:
                    principal = None
                if principal is not None and principal.role == "operator" and principal.name == name:
                    typer.echo(f"kept key {principal.key_id} ({name}) in {token_file}")
                    return
            key, token = issue_key(session, name=name, role="operator", created_by=None)
            record(session, Actor(_login(), "operator"), "key.issue", "key", key.id, detail={"role": "operator"})
            if token_file is not None:  # before the commit: a token that could not be written is never valid
                _write_owner_only(token_file, token)
    finally:
        store.close()
    if token_file is None:
        typer.echo(token)
        typer.echo(f"issued operator key {key.id} ({name}); the token above is shown only now", err=True)
    else:
        typer.echo(f"issued operator key {key.id} ({name}) into {token_file}")
