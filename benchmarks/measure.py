"""Run one pipeline command in this process and print its wall time and peak RSS as JSON.

Usage: python benchmarks/measure.py STAGE [overrides ...]
"""

from __future__ import annotations

import json
import resource
import sys
import time

from pipeline.__main__ import main

if __name__ == "__main__":
    started = time.perf_counter()
    status = main(sys.argv[1:])
    wall_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"status": status, "wall_s": round(wall_s, 1), "peak_rss_mb": round(peak_mb)}))
    sys.exit(status)
