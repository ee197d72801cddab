"""The Alertmanager config publisher over a cluster of two members, faked at the HTTP layer
(a member "loads" the file on disk when told to reload, and reports it in /api/v2/status
like the real one), with a real database and amtool: every member is reloaded and
confirmed, and one that does not answer or runs something else is named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from aami.alertmanager.client import AlertmanagerClient
from aami.alertmanager.publisher import AlertmanagerPublisher
from aami.config import Settings
from aami.db.migrate import upgrade
from aami.db.revisions import RevisionRepository
from aami.db.session import make_engine, make_sessionmaker
from aami.publishing.reconciler import Job
from aami.publishing.types import PassResult, Reload, Result, Target, Trigger

A, B = "http://am-a.test:9093", "http://am-b.test:9093"


class Member:
    """One fake Alertmanager: ``up``, ``down`` (no connection) or ``stuck`` (answers, but a
    reload does not change what it runs)."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.mode = "up"
        self.running = "route: {receiver: default}\nreceivers: [{name: default}]\n"
        self.reloads = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.mode == "down":
            raise httpx.ConnectError("refused", request=request)
        if request.url.path == "/-/reload":
            self.reloads += 1
            if self.mode == "up":
                self.running = self.config.read_text()
            return httpx.Response(200)
        if request.url.path == "/api/v2/status":
            return httpx.Response(200, json={"config": {"original": self.running}})
        return httpx.Response(200)


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    upgrade(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def members(tmp_path: Path) -> dict[str, Member]:
    config = tmp_path / "alertmanager.yml"
    return {"am-a.test": Member(config), "am-b.test": Member(config)}


@pytest.fixture
def publisher(
    factory: sessionmaker[Session], members: dict[str, Member], tmp_path: Path
) -> Iterator[AlertmanagerPublisher]:
    settings = Settings(
        ALERTMANAGER_URL=f"{A},{B}", alertmanager_config_path=tmp_path / "alertmanager.yml"
    )
    client = AlertmanagerClient(
        settings.alertmanager_url,
        timeout=2,
        transport=httpx.MockTransport(lambda r: members[r.url.host](r)),
    )
    yield AlertmanagerPublisher(factory=factory, settings=settings, client=client)
    client.close()


def _pass(publisher: AlertmanagerPublisher) -> tuple[PassResult, list[str], str | None]:
    result = PassResult(Target.ALERTMANAGER, Trigger.CHECK, "test")
    state = publisher.run(Job(), lambda: 1, result)
    return result, state.out_of_sync, state.loaded_error


def _change(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        RevisionRepository(session).bump_area("alerting")
        session.commit()


def test_every_member_is_reloaded_and_confirmed(
    publisher: AlertmanagerPublisher, members: dict[str, Member]
) -> None:
    result, out_of_sync, loaded_error = _pass(publisher)
    assert result.result is Result.OK, result.error
    assert (result.reload, result.confirmed) == (Reload.OK, True)
    assert result.files_written == ["alertmanager.yml"]
    assert (out_of_sync, loaded_error) == ([], None)
    assert [m.reloads for m in members.values()] == [1, 1]
    state = publisher.status_now()
    assert state.in_sync
    assert [s.scope for s in state.scopes] == [f"config@{A}", f"config@{B}"]
    assert len({s.loaded for s in state.scopes}) == 1


def test_a_member_that_does_not_answer_is_named_and_the_other_gets_the_config(
    publisher: AlertmanagerPublisher, members: dict[str, Member], factory: sessionmaker[Session]
) -> None:
    assert _pass(publisher)[0].result is Result.OK
    members["am-b.test"].mode = "down"
    _change(factory)
    result, out_of_sync, loaded_error = _pass(publisher)
    assert result.files_written == ["alertmanager.yml"]
    assert result.result is Result.PENDING_RELOAD
    assert result.reload is Reload.PENDING
    assert result.confirmed is False
    assert f"Alertmanager at {B} does not answer" in (result.error or "")
    assert out_of_sync == [f"config@{B}"]
    assert loaded_error is not None
    assert B in loaded_error
    assert A not in loaded_error
    state = publisher.status_now()
    assert not state.in_sync
    a, b = state.scopes
    assert a.in_sync
    assert a.loaded is not None
    assert a.loaded.revision == a.desired
    assert not b.in_sync
    assert b.loaded is None
    assert B in (b.error or "")

    # Back, but still running the config it had: the next pass reloads it.
    members["am-b.test"].mode = "up"
    assert publisher.status_now().out_of_sync == [f"config@{B}"]
    result, out_of_sync, loaded_error = _pass(publisher)
    assert result.result is Result.OK, result.error
    assert (result.reload, out_of_sync, loaded_error) == (Reload.OK, [], None)
    assert result.files_written == []
    assert members["am-a.test"].reloads == 2  # A already ran it: not reloaded again
    assert publisher.status_now().in_sync


def test_a_member_running_something_else_is_never_in_sync(
    publisher: AlertmanagerPublisher, members: dict[str, Member], factory: sessionmaker[Session]
) -> None:
    assert _pass(publisher)[0].result is Result.OK
    written = (publisher.path or Path()).read_text()
    members["am-b.test"].mode = "stuck"
    _change(factory)
    result, out_of_sync, _ = _pass(publisher)
    # B answers but keeps its config: the new file is undone for both (they share it).
    assert result.result is Result.ROLLED_BACK
    assert f"Alertmanager at {B} is not running the new config" in (result.error or "")
    assert (publisher.path or Path()).read_text() == written
    assert out_of_sync == [f"config@{A}", f"config@{B}"]  # the desired revision is newer
    assert not publisher.status_now().in_sync


def test_no_member_answers_nothing_is_written(
    publisher: AlertmanagerPublisher, members: dict[str, Member]
) -> None:
    for member in members.values():
        member.mode = "down"
    result, out_of_sync, loaded_error = _pass(publisher)
    assert result.result is Result.PENDING_RELOAD
    assert "the config is written once Alertmanager answers" in (result.error or "")
    assert A in (result.error or "")
    assert B in (result.error or "")
    assert not (publisher.path or Path()).exists()
    assert out_of_sync == [f"config@{A}", f"config@{B}"]
    assert loaded_error is not None
