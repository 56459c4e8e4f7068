"""test_overload - a short burst (50 x the governor limit for 8 s) against a
deliberately slow PostgreSQL backend; see overload.py for what is checked.
The issue's full 30 s burst, with /healthz p99 under 100 ms, is
test_overload_slow (label slow)."""
import sys

from harness import Checker, parse_args
import overload


def main():
    args = parse_args()
    c = Checker()
    # /healthz: the 100 ms is asserted by the slow variant; here, on a
    # CI machine shared with the ASan build's tests, 250 ms (the value is printed)
    overload.run(c, args, limit=2, seconds=8, healthz_p99=0.250)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
