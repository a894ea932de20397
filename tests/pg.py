"""A throwaway PostgreSQL cluster for a test session: initdb into a temporary directory, a server that
listens only on 127.0.0.1 on a free port (trust authentication, durability off for speed), and
everything removed again on ``stop()``. PostgreSQL refuses to run as root, so as root the server runs
as the unprivileged ``postgres`` OS user (created when missing). Install the binaries with
``scripts/ensure-postgres.sh``."""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import psycopg

SUPERUSER = "postgres"
DBNAME = "shouwang_test"
OS_USER = "postgres"  # the unprivileged account the server runs as when we are root
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "max_connections": "50",
    "shared_buffers": "32MB",
    "wal_level": "minimal",
    "max_wal_senders": "0",
}
_REQUIRED = ("initdb", "pg_ctl", "postgres")
SHM_MIN_FREE = 1 << 30  # use /dev/shm only when it has this much room (Docker's default is 64 MB)


def _is_server_bindir(path: Path) -> bool:
    return all(os.access(path / name, os.X_OK) for name in _REQUIRED)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.parent.name.split("."))


def find_pg_bin() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: Debian's highest version under
    /usr/lib/postgresql/*/bin, else ``pg_config --bindir``, else wherever ``initdb`` is on PATH."""
    debian = [
        p
        for p in Path("/usr/lib/postgresql").glob("*/bin")
        if re.fullmatch(r"\d+(\.\d+)*", p.parent.name) and _is_server_bindir(p)
    ]
    if debian:
        return max(debian, key=_version_key)
    if pg_config := shutil.which("pg_config"):
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            out = None
        if out is not None and out.returncode == 0 and _is_server_bindir(Path(out.stdout.strip())):
            return Path(out.stdout.strip())
    if initdb := shutil.which("initdb"):
        bindir = Path(initdb).resolve().parent
        if _is_server_bindir(bindir):
            return bindir
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_line(text: str, lines: int = 8) -> str:
    tail = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(tail) or "(no output)"


def _ensure_os_user(name: str) -> pwd.struct_passwd:
    """The unprivileged account to run the server as (root only); a system user is created if missing,
    the way Debian's postgresql-common would create it."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    cmd = [
        "useradd",
        "--system",
        "--user-group",
        "--home-dir",
        "/var/lib/postgresql",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        "--comment",
        "PostgreSQL administrator",
        name,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(
            f"cannot create the OS user {name!r} to run PostgreSQL as (PostgreSQL refuses "
            f"to run as root): {_one_line(result.stderr + result.stdout)}"
        ) from None


def _traversable_by_others(directory: Path) -> bool:
    """Whether every directory from / down to ``directory`` can be entered by another user."""
    directory = directory.resolve()
    return all(p.stat().st_mode & stat.S_IXOTH for p in (directory, *directory.parents))


def _base_dir(as_root: bool) -> Path:
    """Where to put the cluster: /dev/shm when it is a roomy tmpfs (creating a database there takes
    ~30 ms instead of ~280 ms on an ext4 disk), else the temporary directory; /tmp when that is not
    reachable by the server's user (root) or too long for the server's unix socket path (107 bytes)."""
    shm = Path("/dev/shm")
    try:
        st = os.statvfs(shm)
        if (
            st.f_bavail * st.f_frsize >= SHM_MIN_FREE
            and os.access(shm, os.W_OK | os.X_OK)
            and _traversable_by_others(shm)
        ):
            return shm
    except OSError:
        pass
    base = Path(tempfile.gettempdir())
    if (as_root and not _traversable_by_others(base)) or len(str(base)) > 60:
        return Path("/tmp")
    return base


class ThrowawayPostgres:
    """One PostgreSQL server with its data, socket and log in a fresh temporary directory.

    ``start()`` initialises and starts it and creates the database ``shouwang_test``; ``url`` is then a
    SQLAlchemy URL for it; ``stop()`` shuts it down and removes the directory (also at interpreter exit
    if forgotten). Failures raise RuntimeError carrying the tail of initdb's or the server's log."""

    def __init__(self, bindir: Path | None = None, dbname: str = DBNAME, base_dir: Path | None = None) -> None:
        self.bindir = bindir
        self.base_dir = base_dir
        self.dbname = dbname
        self.port: int | None = None
        self.root: Path | None = None
        self._user: pwd.struct_passwd | None = None

    # -- paths and process helpers ------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return self.url_for(self.dbname)

    def url_for(self, dbname: str) -> str:
        """A SQLAlchemy URL for another database on this server."""
        if self.port is None:
            raise RuntimeError("the throwaway PostgreSQL server is not running")
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """A libpq connection string (for psycopg directly)."""
        if self.port is None:
            raise RuntimeError("the throwaway PostgreSQL server is not running")
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={dbname} connect_timeout=10"

    def _run(self, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        assert self.bindir is not None and self.root is not None
        cmd = [str(self.bindir / str(args[0])), *map(str, args[1:])]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", TZ="UTC")
        if self._user is not None:  # root: drop to the unprivileged account
            env.update(HOME=self._user.pw_dir, USER=self._user.pw_name, LOGNAME=self._user.pw_name)
            if shutil.which("setpriv"):
                cmd = [
                    "setpriv",
                    f"--reuid={self._user.pw_uid}",
                    f"--regid={self._user.pw_gid}",
                    "--init-groups",
                    "--",
                    *cmd,
                ]
            else:
                cmd = ["runuser", "-u", self._user.pw_name, "--", *cmd]
        # cwd inside our directory: the unprivileged user may not be able to enter the caller's cwd
        return subprocess.run(
            cmd,
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def _log_tail(self) -> str:
        try:
            return _one_line(self.log_file.read_text(errors="replace"))
        except OSError:
            return "(no server log)"

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> ThrowawayPostgres:
        if self.port is not None:
            return self
        self.bindir = self.bindir or find_pg_bin()
        if self.bindir is None:
            raise RuntimeError(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found under "
                "/usr/lib/postgresql/*/bin or via pg_config; run scripts/ensure-postgres.sh "
                "(as root) or install Debian's 'postgresql' package"
            )
        as_root = os.geteuid() == 0
        self._user = _ensure_os_user(OS_USER) if as_root else None
        self.root = Path(tempfile.mkdtemp(prefix="shouwang-pg-", dir=self.base_dir or _base_dir(as_root)))
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            with contextlib.suppress(Exception):  # keep the original error
                self.stop()
            raise
        return self

    def _start(self) -> None:
        assert self.root is not None
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        init = self._run(
            "initdb", "-D", self.data_dir, "-U", SUPERUSER, "-E", "UTF8", "--locale=C", "--auth=trust", "--no-sync"
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {init.returncode}): {_one_line(init.stdout + init.stderr)}")
        (self.data_dir / "pg_hba.conf").write_text(
            "# throwaway test cluster: trust, loopback only\nlocal all all trust\nhost  all all 127.0.0.1/32 trust\n"
        )
        conf = self.data_dir / "postgresql.conf"
        base_conf = conf.read_text()
        for attempt in range(3):  # another process may grab the free port before the server binds it
            port = free_port()
            settings = {**SETTINGS, "port": str(port), "unix_socket_directories": f"'{self.root}'"}
            conf.write_text(
                base_conf
                + "\n# shouwang throwaway test cluster\n"
                + "".join(f"{k} = {v}\n" for k, v in settings.items())
            )
            started = self._run(
                "pg_ctl", "-D", self.data_dir, "-l", self.log_file, "-w", "-t", "60", "start", timeout=90
            )
            if started.returncode == 0:
                self.port = port
                break
            log = self._log_tail()
            if attempt < 2 and "already in use" in log:
                continue
            raise RuntimeError(
                f"PostgreSQL did not start (pg_ctl exit {started.returncode}: "
                f"{_one_line(started.stdout + started.stderr, 3)}); server log: {log}"
            )
        try:
            with psycopg.connect(self.conninfo(), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.dbname}"')
        except psycopg.Error as exc:
            raise RuntimeError(
                f"cannot create database {self.dbname!r}: {_one_line(str(exc))}; server log: {self._log_tail()}"
            ) from exc

    def stop(self) -> None:
        """Shut the server down (fast mode) and remove its directory; safe to call more than once."""
        atexit.unregister(self.stop)
        root, self.root = self.root, None
        if root is None:
            return
        error = None
        try:
            if (root / "data" / "postmaster.pid").exists():
                self.root = root
                result = self._run("pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "-t", "60", "stop", timeout=90)
                if result.returncode != 0:
                    error = (
                        f"pg_ctl stop failed (exit {result.returncode}): "
                        f"{_one_line(result.stdout + result.stderr, 3)}; server log: {self._log_tail()}"
                    )
                    # do not leave a server running on a deleted directory
                    self._run("pg_ctl", "-D", self.data_dir, "-m", "immediate", "-w", "-t", "30", "stop", timeout=60)
        finally:
            self.root = None
            self.port = None
            shutil.rmtree(root, ignore_errors=True)
        if error:
            raise RuntimeError(error)

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
