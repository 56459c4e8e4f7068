"""test_chaos_payments_slow - the chaos test at full size: 5,000 payments, 200 kills.

Labelled `slow` (excluded from `make test`); run it with
`ctest -L slow -R chaos_payments_slow` or directly. The checks are those of
test_chaos_payments.py.
"""
import sys

import test_chaos_payments

if __name__ == "__main__":
    sys.exit(test_chaos_payments.main(default_payments=5000, default_kills=200))
