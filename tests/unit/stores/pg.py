"""A PostgreSQL server for the store tests: the one named by UNSTUCK_TEST_POSTGRES_URL, or a
throwaway one started from Debian's postgresql package (initdb and pg_ctl on PATH), or none.

A throwaway server lives in a temporary directory for the test session, listens on
127.0.0.1 on a free port, collates text as ICU's en-US (not byte order, so an ORDER BY that
forgets it is caught), trusts local connections and runs without fsync (speed; the
durability of PostgreSQL itself is not under test). As root it runs as the `postgres` user,
since the server refuses to run as root. Each test gets its own schema, named in the URL's
`options=-csearch_path=...`, so tests never see each other's rows.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from urllib.parse import quote

SKIP_REASON = ("no PostgreSQL server: set UNSTUCK_TEST_POSTGRES_URL=postgresql://... or install "
               "Debian's postgresql package (initdb, pg_ctl) to run the store suite against it")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self) -> None:
        self.url: str | None = os.environ.get("UNSTUCK_TEST_POSTGRES_URL") or None
        self.dir: str | None = None
        self.error: str | None = None
        self.bin: dict[str, str | None] = {}
        if self.url is None:
            self._start()

    def _as_server_user(self, args: list[str]) -> list[str]:
        args = [self.bin.get(args[0], args[0]), *args[1:]]
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return args

    def _start(self) -> None:
        # Debian keeps the server programs off PATH, in /usr/lib/postgresql/<major>/bin.
        found = {p: shutil.which(p) for p in ("initdb", "pg_ctl")}
        for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
            for p in found:
                found[p] = found[p] or (os.path.join(d, p) if os.path.exists(os.path.join(d, p)) else None)
        if not all(found.values()):
            self.error = SKIP_REASON
            return
        self.bin = found
        if os.geteuid() == 0 and not shutil.which("runuser"):
            self.error = SKIP_REASON + " (as root, runuser is needed to start it as postgres)"
            return
        self.dir = tempfile.mkdtemp(prefix="unstuck-pg-")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        port = _free_port()
        data = os.path.join(self.dir, "data")
        try:
            # A linguistic collation (ICU en-US), as production databases often have, so the
            # contract suite sees that text keys still list in code-point order.
            subprocess.run(self._as_server_user(["initdb", "-D", data, "-A", "trust", "-U", "postgres",
                                                 "--no-sync", "--locale=C.UTF-8", "--locale-provider=icu",
                                                 "--icu-locale=en-US"]),
                           check=True, capture_output=True, timeout=60)
            subprocess.run(self._as_server_user([
                "pg_ctl", "-D", data, "-l", os.path.join(self.dir, "log"), "-w", "-t", "30",
                "-o", f"-F -k {self.dir} -h 127.0.0.1 -p {port}", "start"]),
                check=True, capture_output=True, timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            self.error = f"{SKIP_REASON} (starting one failed: {exc} {detail.decode(errors='replace')[-300:]})"
            return
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def schema_url(self) -> str:
        """A fresh, empty schema of the server, as a store URL."""
        import psycopg

        assert self.url is not None
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        sep = "&" if "?" in self.url else "?"
        return f"{self.url}{sep}options={quote('-csearch_path=' + name)}"

    def stop(self) -> None:
        if self.dir is None:
            return
        data = os.path.join(self.dir, "data")
        subprocess.run(self._as_server_user(["pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
