"""Loaded by pytest as a plugin (`-p tests.testenv` in pytest.ini) before pytest-django
reads the settings, so the suite never touches `make run`'s data:

- embedded servers: the suite's own, under .aiproxy/test;
- an external DATABASE_URL: its database name with `_test` appended (the suite drops and
  recreates that database);
- an external REDIS_URL: only that logical database is flushed;
- secrets: the suite counts as the embedded development stack (AIPROXY_DEV_SECRETS), so
  SECRET_KEY and AIPROXY_ENCRYPTION_KEY are generated under its data directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

os.environ["AIPROXY_DATA_DIR"] = os.environ.get("AIPROXY_TEST_DATA_DIR") or str(
    Path(__file__).resolve().parent.parent / ".aiproxy" / "test"
)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Many tests make the demo models' fake upstream fail on purpose ([[fake:status=500]],
# hangs, cuts), all on the one Redis every gateway process of the session shares. With the
# default breaker those deliberate failures would open the demo deployments' circuits and
# turn unrelated later tests' answers into 503s. So every process the suite starts (and the settings of this one) gets a
# breaker that does not open; tests/e2e/test_routing.py and tests/gateway/test_health.py
# start their gateways and boards with breakers that do.
os.environ.setdefault("GATEWAY_BREAKER_FAILURES", "1000000")
os.environ.setdefault("GATEWAY_BREAKER_MIN_REQUESTS", "1000000")
EXTERNAL_REDIS = bool(os.environ.get("REDIS_URL"))
if os.environ.get("DATABASE_URL"):
    os.environ.setdefault("AIPROXY_DEV_SECRETS", "1")  # the suite's secrets: generated under its data dir
    _url = urlparse(os.environ["DATABASE_URL"])
    if not _url.path.rstrip("/").endswith("_test"):
        os.environ["DATABASE_URL"] = _url._replace(path=_url.path.rstrip("/") + "_test").geturl()
