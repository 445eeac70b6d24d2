"""The app of ``promptops gateway`` under cProfile, for bench/gateway.py --profile: the profiler starts at the
first /v1 request (so start-up and imports are left out) and writes its stats to OUT on a clean stop
(SIGINT/SIGTERM). It counts the event loop thread's CPU time (``time.thread_time``), not wall time: on a
shared machine wall time would charge whatever function was running when the process was descheduled.
Settings come from the environment, as for ``promptops gateway``.

    python bench/gateway/profiled.py PORT OUT
"""

from __future__ import annotations

import cProfile
import sys
import time
from typing import Any

import uvicorn

from promptops.gateway.standalone import build_gateway_app


def main() -> None:
    port, out = int(sys.argv[1]), sys.argv[2]
    app = build_gateway_app()
    profiler = cProfile.Profile(time.thread_time)
    started = False

    async def profiled(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal started
        if not started and scope["type"] == "http" and scope["path"].startswith("/v1/"):
            started = True
            profiler.enable()
        await app(scope, receive, send)

    try:
        uvicorn.run(
            profiled,
            host="127.0.0.1",
            port=port,
            access_log=False,
            log_config=None,
            loop="uvloop",
            http="httptools",
        )
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    main()
