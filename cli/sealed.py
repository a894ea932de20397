"""``shouwang secrets rotate``: every sealed value (webhook signing secrets and channel credentials)
encrypted again under the first of SHOUWANG_SECRET_KEYS. Key rotation: put a new key first, run this,
then drop the old key."""

from __future__ import annotations

import typer

from shouwang.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Secrets sealed at rest (webhook secrets, channel credentials).")


@app.command("rotate")
def rotate() -> None:
    """Re-encrypt every sealed webhook secret and channel credential under the first (newest) key."""
    from alerts import admin
    from alerts.audit import Actor, record
    from alerts.db import Store, upgrade
    from alerts.secret_box import secret_box
    from cli.audit import _login

    settings = get_settings()
    upgrade(settings.store_url)
    store = Store(settings.store_url, migrate=False)

    def progress(done: int, total: int) -> None:
        if done == total or done % 100 == 0:
            typer.echo(f"\rresealed {done}/{total}", nl=done == total, err=True)

    try:
        with store.transaction() as session:
            count = admin.reseal_credentials(session, secret_box(settings), progress=progress)
            # On the trail with the values it touched, in their transaction: who rotated, and how many.
            record(session, Actor(_login(), "operator"), "secrets.rotate", "endpoint", detail={"count": count})
    finally:
        store.close()
    typer.echo(f"resealed {count} sealed value(s) (webhook secrets and channel credentials) under the first key")
