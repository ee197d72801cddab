"""Run the AAMI server with the web UI installed, for the browser tests.

``python -m tests.web.server --port N`` reads the same environment as ``aami server``.
``install`` is idempotent, so this keeps working once ``create_app`` installs the UI itself.
"""

from __future__ import annotations

import argparse

import uvicorn

from aami.app import create_app
from aami.config import Settings
from aami.web.routes import install


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = create_app(Settings())
    install(app)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
