"""The AAMI node agent: fetch the node's effective checks, run them, write ``.prom`` files.

An island: it imports nothing else from ``aami`` and talks to the server only over HTTP, so
it can be installed and reasoned about on its own. Modules:

- ``config``  the agent's settings (file, environment, flags)
- ``client``  the only module that makes HTTP calls (https, verified); the checks cache
- ``signing`` the signed bytes of a check and the pinned server keys (``cryptography``'s
              Ed25519, verification only: no home-made crypto on a root process)
- ``output``  parse and canonicalise check output (pure)
- ``runner``  run scripts, write textfiles, one agent run
- ``watchdog`` the process that kills a dead agent's checks (stdlib only, started per run)
- ``cli``     the ``aami agent`` Typer sub-app
"""

from __future__ import annotations

__all__: list[str] = []
