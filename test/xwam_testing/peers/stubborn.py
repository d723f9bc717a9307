"""A process that ignores SIGINT (as a hung node would) and exits on SIGTERM."""

import signal
import sys
import time

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
print("stubborn: ignoring SIGINT", flush=True)
while True:
    time.sleep(0.1)
