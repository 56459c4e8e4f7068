"""test_overload_slow - the issue's burst: 50 x the configured concurrency
(limit 4: 200 clients) for 30 s against a slow PostgreSQL backend; see
overload.py. Label slow: not in make test."""
import sys

from harness import Checker, parse_args
import overload


def main():
    args = parse_args()
    c = Checker()
    overload.run(c, args, limit=4, seconds=30)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
