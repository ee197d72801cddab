"""The web UI: server-rendered pages at /ui over the same services as the API.

``aami.web.routes.install(app)`` serves it from an app built by ``aami.app.create_app``.
"""
