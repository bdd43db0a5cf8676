"""``python bench/profiled_worker.py OUT.prof [worker.py args]``: worker.py under cProfile.

The profile is written when the worker stops (SIGTERM: RQ finishes the current job and returns).
Used by ``bench_action.py pipeline --profile DIR``; cProfile slows the worker, so CPU figures come
from a run without it and the profile only says where the time goes.
"""

from __future__ import annotations

import cProfile
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import worker  # noqa: E402


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    profile = cProfile.Profile(time.process_time)  # CPU, not wall time (waits are not cost)
    profile.enable()
    try:
        return worker.main(argv)
    finally:
        profile.disable()
        profile.dump_stats(out)


if __name__ == "__main__":
    sys.exit(main())
