"""The publisher against a database, real promtool and a Prometheus faked at the HTTP layer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from aami.alerts.models import AlertRule, AlertTemplate
from aami.db.migrate import upgrade
from aami.db.session import make_engine, make_sessionmaker
from aami.groups.models import Group
from aami.prometheus.client import PrometheusClient
from aami.prometheus.publisher import Publisher
from aami.prometheus.rule_files import RuleFileStore

Handler = Callable[[httpx.Request], httpx.Response]


class FakePrometheus:
    """Answers /-/reload as told and reports the files on disk as loaded."""

    def __init__(self, store: RuleFileStore) -> None:
        self.store = store
        self.reloads = 0
        self.mode = "ok"
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/-/reload":
            with self.lock:
                self.reloads += 1
            if self.mode == "down":
                raise httpx.ConnectError("refused", request=request)
            if self.mode == "forbidden":
                return httpx.Response(403, text="Lifecycle API is not enabled.")
            if self.mode == "reject":
                self.mode = "ok"  # accepts the restored files
                return httpx.Response(500, text="failed to reload config: bad rule")
            return httpx.Response(200)
        if request.url.path == "/api/v1/rules":
            groups = [
                {
                    "name": f"aami-{f.group_id or 'global'}",
                    "file": f.path,
                    "rules": [{}] * f.rule_count,
                }
                for f in self.store.info()
            ]
            return httpx.Response(200, json={"status": "success", "data": {"groups": groups}})
        return httpx.Response(200)


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    upgrade(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def store(tmp_path: Path) -> RuleFileStore:
    store = RuleFileStore(tmp_path / "rules")
    store.ensure()
    return store


@pytest.fixture
def fake(store: RuleFileStore) -> FakePrometheus:
    return FakePrometheus(store)


@pytest.fixture
def publisher(
    factory: sessionmaker[Session], store: RuleFileStore, fake: FakePrometheus
) -> Iterator[Publisher]:
    client = PrometheusClient(
        "http://prometheus.test", timeout=2, retries=2, transport=httpx.MockTransport(fake)
    )
    publisher = Publisher(
        factory=factory,
        store=store,
        client=client,
        validate=True,
        reload_enabled=True,
        debounce=0.05,
    )
    yield publisher
    publisher.stop()
    client.close()


def _seed(factory: sessionmaker[Session], groups: int = 3) -> None:
    with factory() as session:
        template = AlertTemplate(
            id="t",
            name="Load",
            query_template=('node_load1{group_id="{{.group_id}}"} > {{.threshold}}'),
            default_config={"threshold": 4},
            severity="warning",
            for_duration="5m",
            labels={},
            annotations={},
            description="",
        )
        session.add(template)
        for index in range(groups):
            session.add(Group(id=f"g{index}", name=f"group {index}", description="", labels={}))
            session.add(
                AlertRule(
                    id=f"r{index}",
                    template_id="t",
                    group_id=f"g{index}",
                    scope_key=f"g{index}",
                    config={"threshold": index + 1},
                    enabled=True,
                    labels={},
                    annotations={},
                )
            )
        session.commit()


def test_full_publish_then_one_change_rewrites_one_file(
    publisher: Publisher,
    factory: sessionmaker[Session],
    store: RuleFileStore,
    fake: FakePrometheus,
) -> None:
    _seed(factory)
    result = publisher.publish(None, actor="t", trigger="test")
    assert result.files_written == ["group-g0.yml", "group-g1.yml", "group-g2.yml"]
    assert (result.validation, result.reload, result.confirmed, result.result) == (
        "ok",
        "ok",
        True,
        "ok",
    )
    assert fake.reloads == 1  # one reload for the whole batch
    with factory() as session:
        session.get(AlertRule, "r1").config = {"threshold": 9}  # type: ignore[union-attr]
        session.commit()
    result = publisher.publish({"g0", "g1", "g2"}, actor="t", trigger="test")
    assert result.files_written == ["group-g1.yml"]
    assert result.files_unchanged == 2
    assert "> 9" in store.read("group-g1.yml")  # type: ignore[operator]
    nothing = publisher.publish(None, actor="t", trigger="test")
    assert nothing.files_written == []
    assert nothing.reload == "not_needed"
    assert fake.reloads == 2


def test_rejected_reload_restores_the_previous_files(
    publisher: Publisher,
    factory: sessionmaker[Session],
    store: RuleFileStore,
    fake: FakePrometheus,
) -> None:
    _seed(factory, groups=1)
    publisher.publish(None, actor="t", trigger="test")
    before = store.read("group-g0.yml")
    with factory() as session:
        session.get(AlertRule, "r0").config = {"threshold": 7}  # type: ignore[union-attr]
        session.commit()
    fake.mode = "reject"
    result = publisher.publish({"g0"}, actor="t", trigger="test")
    assert result.reload == "rejected"
    assert result.result == "rolled_back"
    assert "bad rule" in (result.error or "")
    assert store.read("group-g0.yml") == before
    assert fake.reloads == 3  # the first publish, the rejected one, the re-reload


def test_forbidden_reload_is_reported_not_retried(
    publisher: Publisher, factory: sessionmaker[Session], fake: FakePrometheus
) -> None:
    _seed(factory, groups=1)
    fake.mode = "forbidden"
    result = publisher.publish(None, actor="t", trigger="test")
    assert result.reload == "forbidden"
    assert "--web.enable-lifecycle" in (result.error or "")
    assert fake.reloads == 1
    assert publisher.reload_pending is False


def test_unreachable_prometheus_is_retried_in_the_background(
    publisher: Publisher, factory: sessionmaker[Session], fake: FakePrometheus
) -> None:
    _seed(factory, groups=1)
    fake.mode = "down"
    publisher.start(reconcile=False)
    result = publisher.publish(None, actor="t", trigger="test")
    assert result.result == "pending_reload"
    assert result.files_written == ["group-g0.yml"]
    assert publisher.reload_pending is True
    fake.mode = "ok"
    from tests.support.wait import wait_for

    wait_for(lambda: not publisher.reload_pending, timeout=10, what="the background retry")
    assert publisher.last_result is not None
    assert publisher.last_result.trigger == "reload_retry"


def test_changes_are_debounced_into_one_batch(
    publisher: Publisher, factory: sessionmaker[Session], fake: FakePrometheus
) -> None:
    _seed(factory, groups=3)
    publisher.start(reconcile=False)
    for scope in ("g0", "g1", "g2"):
        publisher.mark({scope})
    from tests.support.wait import wait_for

    wait_for(lambda: publisher.last_result is not None, timeout=10, what="a publish")
    assert publisher.last_result is not None
    assert publisher.last_result.files_written == ["group-g0.yml", "group-g1.yml", "group-g2.yml"]
    assert fake.reloads == 1


def test_deleted_rules_remove_their_file(
    publisher: Publisher, factory: sessionmaker[Session], store: RuleFileStore
) -> None:
    _seed(factory, groups=2)
    publisher.publish(None, actor="t", trigger="test")
    with factory() as session:
        session.delete(session.get(AlertRule, "r1"))
        session.commit()
    result = publisher.publish({"g1"}, actor="t", trigger="test")
    assert result.files_removed == ["group-g1.yml"]
    assert store.managed() == ["group-g0.yml"]
    assert result.confirmed is True


def test_validation_failure_keeps_the_good_file(
    publisher: Publisher,
    factory: sessionmaker[Session],
    store: RuleFileStore,
    fake: FakePrometheus,
) -> None:
    _seed(factory, groups=2)
    publisher.publish(None, actor="t", trigger="test")
    good = store.read("group-g0.yml")
    with factory() as session:
        template = session.get(AlertTemplate, "t")
        assert template is not None
        template.annotations = {"summary": "{{ not_a_function }}"}
        session.commit()
    result = publisher.publish(None, actor="t", trigger="test")
    assert result.validation == "failed"
    assert set(result.files_rejected) == {"group-g0.yml", "group-g1.yml"}
    assert result.result == "failed"
    assert store.read("group-g0.yml") == good
    assert fake.reloads == 1
