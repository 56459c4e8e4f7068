"""pgutil.py - a throw-away PostgreSQL database for an integration test.

The server and role come from GG_TEST_PG (libpq conninfo; default the role
scripts/pg-setup.sh creates: host=127.0.0.1 port=5432 user=gridgate
password=gridgate dbname=gridgate). A test makes its own database, named
after its process, and drops it at the end. psql (postgresql-client) runs
the SQL; only the Python standard library is used.
"""
import os
import subprocess

BASE = os.environ.get("GG_TEST_PG",
                      "host=127.0.0.1 port=5432 user=gridgate password=gridgate dbname=gridgate")


def psql(conninfo, sql, timeout=120):
    out = subprocess.run(["psql", conninfo, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                          "-c", sql], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError("psql failed: %s" % out.stderr.strip())
    return out.stdout


def query(conninfo, sql):
    """Rows of sql as lists of strings (fields split on '|')."""
    return [line.split("|") for line in psql(conninfo, sql).splitlines() if line]


def with_db(conninfo, dbname):
    parts = [p for p in conninfo.split() if not p.startswith("dbname=")]
    return " ".join(parts + ["dbname=" + dbname])


class TempDB:
    def __init__(self, tag="test"):
        self.name = "gg_%s_%d" % (tag, os.getpid())
        try:
            psql(BASE, "SELECT 1", timeout=30)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            raise RuntimeError("PostgreSQL is not reachable at GG_TEST_PG (%s): run "
                               "scripts/pg-setup.sh as root, or set GG_TEST_PG: %s" % (BASE, e))
        psql(BASE, "DROP DATABASE IF EXISTS %s" % self.name)
        psql(BASE, "CREATE DATABASE %s" % self.name)
        self.conninfo = with_db(BASE, self.name)

    def drop(self):
        try:
            psql(BASE, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass


def on_both(tag, run):
    """run(None) on SQLite, then run(conninfo) on a TempDB(tag) dropped after."""
    run(None)
    db = TempDB(tag)
    try:
        run(db.conninfo)
    finally:
        db.drop()
