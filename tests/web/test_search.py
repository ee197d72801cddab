"""The filter boxes search in the database: every row, however long the list."""

from __future__ import annotations

from sqlalchemy import insert

from aami.config import Settings
from aami.db.session import make_engine
from aami.groups.models import Group
from tests.web.conftest import Ui


def test_a_filter_box_reaches_past_twenty_thousand_rows(ui: Ui, settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    with engine.begin() as connection:
        rows = [
            {"id": f"g{n:05d}", "name": f"group {n:05d}", "description": "", "labels": {}}
            for n in range(20_050)
        ]
        rows.append({"id": "zz-last", "name": "the needle", "description": "", "labels": {}})
        connection.execute(insert(Group), rows)
    engine.dispose()
    page = ui.get("/ui/groups?q=NEEDLE").text
    assert "the needle" in page
    assert "group 00001" not in page
    # "group 1" matches group 10000 .. group 19999; page 200 holds the last 50 of them.
    last = ui.get("/ui/groups?q=group%201&page=200").text
    assert "group 19999" in last
    assert "group 19950" in last
    assert "group 19949" not in last
    assert "Page 200 of 200 (10000)" in last


def test_odd_characters_in_a_filter_box_are_text(ui: Ui) -> None:
    assert ui.api("POST", "/api/v1/groups", json={"id": "p", "name": "50%_off"}).status_code == 201
    assert ui.api("POST", "/api/v1/groups", json={"id": "q", "name": "500 off"}).status_code == 201
    page = ui.get("/ui/groups", params={"q": "0%_"}).text
    assert "50%_off" in page
    assert "500 off" not in page
    for path in ("/ui/groups", "/ui/targets", "/ui/scripts"):
        response = ui.get(path, params={"q": "a\x00b\x1f" + "x" * 500})
        assert response.status_code == 200, (path, response.text[:200])
