"""test_channel_faults_full - the fault test at the issue's full size:
10,000 messages each way and 200 cuts (label `slow`; see
test_channel_faults for what is checked)."""
import sys

import test_channel_faults

if __name__ == "__main__":
    sys.exit(test_channel_faults.run(10000, 200))
