"""test_governor_adaptive_slow - the adaptive limiter settles near the knee
that `gridgate admin probe-capacity` reports (label slow).

Seeds a demo on PostgreSQL whose bills statement burns CPU (a test queries
file: counting a generated series, a few ms per query, so that the two
cores give the database a real knee), measures the knee with
probe-capacity, then runs the utility with 16 workers and
`governor.mode = adaptive` (bounds 1..16, no cache) under 64 clients of
`gridgate bench http` for 25 s, sampling gridgate_governor_limit over the
last 15 s. The mean must lie within [knee/2, 2 x knee + 2]: the limiter
found, by itself, about the concurrency the operators used to find by hand.
"""
import os
import re
import subprocess
import sys
import threading
import time

from harness import Checker, Demo, parse_args
from overload import metrics
import pgutil

CPU_QUERIES = """# test queries: the bills statement burns CPU in the database
[bills]
WITH burn AS MATERIALIZED (SELECT count(*) AS n FROM generate_series(1, 150000))
SELECT bill_id, period, kwh, kwh_peak, kwh_valley, amount_fen, due_date, status
  FROM bills, burn
  WHERE account_no = $1 AND period >= $2 AND period <= $3 AND burn.n > 0
  ORDER BY period, bill_id LIMIT $4
"""


def main():
    args = parse_args()
    c = Checker()
    db = pgutil.TempDB("adaptive")
    d = Demo(args.gridgate, accounts=1000, months=12, pg=db.conninfo)
    try:
        ucfg = os.path.join(d.dir, "utility.conf")
        qfile = os.path.join(d.dir, "cpu-queries.ini")
        with open(qfile, "w") as f:
            f.write(CPU_QUERIES)
        with open(ucfg, "a") as f:
            f.write("marketing_queries = %s\n" % qfile)
        out = subprocess.run([d.gridgate, "admin", "probe-capacity", "-c", ucfg, "--seconds", "2",
                              "--max", "16"], capture_output=True, text=True, timeout=300)
        print(out.stdout, flush=True)
        m = re.search(r"knee=(\d+)", out.stdout)
        c.check(out.returncode == 0 and m, "probe-capacity reports a knee")
        knee = int(m.group(1)) if m else 2
        text = open(ucfg).read().replace("workers = 32", "workers = 16")
        text += "\n[governor]\nmode = adaptive\nmin_inflight = 1\nmax_inflight = 16\n\n[cache]\nentries = 0\n"
        open(ucfg, "w").write(text)
        d.start_both()
        bench = subprocess.Popen([d.gridgate, "bench", "http", "--url", "http://127.0.0.1:%d" % d.port,
                                  "--db", d.db_path, "--concurrency", "64", "--duration", "25",
                                  "--mix", "query=100", "--population", "500"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        samples = []
        t0 = time.time()
        while bench.poll() is None and time.time() - t0 < 120:
            if time.time() - t0 > 12:
                v = metrics(d.port + 3).get("gridgate_governor_limit")
                if v is not None:
                    samples.append(v)
            time.sleep(0.5)
        res = bench.communicate(timeout=120)[0]
        print(res, flush=True)
        mean = sum(samples) / len(samples) if samples else -1
        print("knee %d; adaptive limit over the last seconds: mean %.1f min %s max %s (n=%d)"
              % (knee, mean, min(samples or [0]), max(samples or [0]), len(samples)), flush=True)
        c.check(samples, "the limit was sampled under load")
        c.check(knee / 2.0 <= mean <= 2 * knee + 2,
                "the adaptive limit (mean %.1f) settles near the knee %d" % (mean, knee))
        um = metrics(d.port + 3)
        c.check(um.get("gridgate_backend_inflight_max", 99) <= 16, "never above the upper bound")
    finally:
        d.cleanup(keep=args.keep)
        db.drop()
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
