"""One API process of bench/api_throughput.py: ``shouwang api`` with the run's switches.

    python bench/api_server.py PORT FULL|NORMAL|on on|off     # started by bench/api_throughput.py

Its settings come from the environment (SHOUWANG_...), as ``shouwang api``'s do; it serves
``api.app.create_app`` under uvicorn on 127.0.0.1:PORT as ``api.app.run_api`` does, with two switches a
benchmark may pull and the product never does: SQLite's ``synchronous`` for this process's engine, and the
audit trail off. It prints the durability it reads back from its store before serving.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.db import Store
from bench.store_durability import durability_of, use_sqlite_synchronous
from shouwang.settings import Settings


def turn_audit_off() -> None:
    """This process's audit trail does nothing: ``record`` replaced, in alerts.audit and in every module that
    imported the name (the routes), by a function that adds no row. A benchmark's switch, not the product's."""
    import alerts.audit
    import api.app  # noqa: F401  (imports every route module first)

    recording = alerts.audit.record

    def nothing(*_args: Any, **_kwargs: Any) -> None:
        return None

    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] in {"alerts", "api"} and getattr(module, "record", None) is recording:
            module.record = nothing  # type: ignore[attr-defined]


def serve(port: int, synchronous: str, audit: bool) -> None:
    """``shouwang api`` (api.app.run_api) on this port, its settings from the environment, with the variant's
    switches: the store made here so its engine gets the synchronous setting before its first connection."""
    import uvicorn

    from api.app import create_app

    settings = Settings()
    if not audit:
        turn_audit_off()
    store = Store(settings.store_url)
    if store.engine.dialect.name == "sqlite":
        use_sqlite_synchronous(store.engine, synchronous)
    print(f"durability: {durability_of(store.engine)}; audit {'on' if audit else 'off'}", flush=True)
    uvicorn.run(
        create_app(settings, store=store),
        host="127.0.0.1",
        port=port,
        log_config=None,
        server_header=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    port, synchronous, audit = sys.argv[1:4]
    serve(int(port), synchronous, audit == "on")
