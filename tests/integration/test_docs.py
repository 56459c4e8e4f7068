"""test_docs - the documents that are generated from code still match it.

docs/config.md must end with exactly what `gridgate config docs` prints,
so the config table in src/core/config.c and the document cannot drift.
"""
import os
import subprocess
import sys

from harness import Checker, parse_args


def main():
    args = parse_args()
    c = Checker()
    out = subprocess.run([args.gridgate, "config", "docs"], capture_output=True, text=True, check=True).stdout
    with open(os.path.join(args.source, "docs", "config.md"), encoding="utf-8") as f:
        doc = f.read()
    c.check(len(out) > 200 and doc.endswith(out),
            "docs/config.md ends with `gridgate config docs` (regenerate it: see the top of the file)")
    for line in out.splitlines()[2:]:
        key = line.split("`")[1]
        c.check(key.count(".") == 1, "key %s is section.key" % key)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
