"""``aami server`` runs on asyncio's own event loop, even with uvloop installed (uvicorn's
"auto" would pick uvloop). Saturated with 100 keep-alive connections on one core, uvloop
answered about 1 % of the checks polls 0.3-1.3 s late while the rest took 20 ms; asyncio's
loop kept every answer under 90 ms at the same throughput (bench/checks_open.py)."""

from __future__ import annotations

import asyncio

from aami.serving import Limits, build_server


def test_the_server_is_configured_for_asyncios_loop() -> None:
    server = build_server(
        object(), host="127.0.0.1", port=0, log_level="warning", limits=Limits(), tls=None
    )
    assert server.config.loop == "asyncio"


def test_that_loop_is_asyncios_even_with_uvloop_installed() -> None:
    import uvloop  # noqa: F401  uvicorn[standard] brings it: the case that matters

    server = build_server(
        object(), host="127.0.0.1", port=0, log_level="warning", limits=Limits(), tls=None
    )
    factory = server.config.get_loop_factory()
    loop = factory() if factory is not None else asyncio.new_event_loop()
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()
