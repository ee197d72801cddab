"""``aami rules sync``: keep a Prometheus or vmalert on another host running the rules AAMI
publishes for it.

An island like the node agent: it imports nothing else from ``aami`` and talks to the
server only over HTTP. Modules:

- ``client``    the AAMI API: the evaluator's rule set (ETag, long-poll) and its status
- ``evaluator`` the local Prometheus or vmalert: validate, reload, read ``/api/v1/rules``
- ``files``     the rules directory: stage, install atomically, restore, the state file
- ``loop``      one pass and the loop around it
"""

from __future__ import annotations

__all__: list[str] = []
