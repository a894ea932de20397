"""``python bench/chaos_process.py ARGS…`` runs ``python -m cli ARGS…`` (a worker, a router) with Python's
fault handler on SIGUSR1: the fault run (bench/chaos.py) asks a process that stopped making progress where
each of its threads is, in its log, before it kills and restarts it."""

from __future__ import annotations

import faulthandler
import runpy
import signal
import sys

faulthandler.register(signal.SIGUSR1, all_threads=True)
sys.argv = ["cli", *sys.argv[1:]]
runpy.run_module("cli", run_name="__main__", alter_sys=True)
