"""A real PostgreSQL server in a temporary directory, on a free loopback port.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port


def _bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if candidates:
        return candidates[-1]
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install the Debian package postgresql")
    return found


def _as_db_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@dataclass
class PostgresServer:
    data_dir: Path
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls) -> PostgresServer:
        root = Path(tempfile.mkdtemp(prefix="aami-pg-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(root, user.pw_uid, user.pw_gid)
        data_dir = root / "data"
        subprocess.run(
            _as_db_user(
                [
                    _bin("initdb"),
                    "-D",
                    str(data_dir),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )
        port = free_port()
        subprocess.run(
            _as_db_user(
                [
                    _bin("pg_ctl"),
                    "-D",
                    str(data_dir),
                    "-l",
                    str(root / "server.log"),
                    "-w",
                    "-o",
                    f"-p {port} -h 127.0.0.1 -k {root} -F -c max_connections=200",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        return cls(data_dir=data_dir, port=port)

    def stop(self) -> None:
        subprocess.run(
            _as_db_user([_bin("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)
