"""A real AAMI server process with the configuration-as-code router included.

Until app.py includes the router, ``aami server`` does not serve /api/v1/config; the CLI
test starts this instead: ``python -m tests.configcode.server --port N`` (settings from
the environment, as ``aami server`` reads them).
"""

from __future__ import annotations

import argparse

import uvicorn

from aami.app import create_app
from aami.config import Settings
from aami.configcode.endpoints import router


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = create_app(Settings())
    app.include_router(router, prefix="/api/v1")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
