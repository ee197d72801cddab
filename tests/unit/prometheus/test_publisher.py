"""The rule publisher against a database, real promtool and a Prometheus faked at the HTTP
layer (it loads the files on disk when told to reload, like the real one)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from aami.alerts.models import AlertRule, AlertTemplate
from aami.common.changes import mark_rule_scopes
from aami.db.migrate import upgrade
from aami.db.session import make_engine, make_sessionmaker
from aami.groups.models import Group
from aami.prometheus.client import PrometheusClient
from aami.prometheus.publisher import RulePublisher
from aami.prometheus.rule_files import SENTINEL_RECORD, RuleFileStore
from aami.publishing.reconciler import Job
from aami.publishing.types import PassResult, Reload, Result, Target, Trigger, Validation


class FakePrometheus:
    """Answers /-/reload as told; on a good reload it "loads" the files on disk, and
    /api/v1/rules reports their stamps as the real one reports the stamp rule's labels."""

    def __init__(self, store: RuleFileStore) -> None:
        self.store = store
        self.reloads = 0
        self.mode = "ok"
        self.lock = threading.Lock()
        self.loaded: dict[str, dict[str, str]] = {}

    def load(self) -> None:
        self.loaded = {
            f"aami-{scope or 'global'}": {
                "aami_rule_group": f"aami-{scope or 'global'}",
                "aami_revision": str(file.stamp.revision),
                "aami_fingerprint": file.stamp.fingerprint,
            }
            for scope, file in self.store.written().items()
            if file.stamp is not None
        }

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
            if self.mode != "ignore":  # "ignore": reloads, but reads another directory
                self.load()
            return httpx.Response(200)
        if request.url.path == "/api/v1/rules":
            if self.mode == "down":
                raise httpx.ConnectError("refused", request=request)
            groups = [
                {
                    "name": name,
                    "file": f"/etc/prometheus/rules/generated/{name}.yml",
                    "rules": [{"name": SENTINEL_RECORD, "labels": labels, "type": "recording"}],
                }
                for name, labels in self.loaded.items()
            ]
            # a static file of the operator's whose group name starts like AAMI's
            groups.append(
                {"name": "aami-self", "file": "/etc/prometheus/rules/aami.yml", "rules": []}
            )
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
) -> Iterator[RulePublisher]:
    client = PrometheusClient(
        "http://prometheus.test", timeout=2, retries=2, transport=httpx.MockTransport(fake)
    )
    yield RulePublisher(
        factory=factory, store=store, client=client, validate=True, reload_enabled=True
    )
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
        session.flush()
        mark_rule_scopes(session, {f"g{index}" for index in range(groups)})
        session.commit()


def _change(factory: sessionmaker[Session], rule_id: str, **values: object) -> None:
    """Change a rule the way a service does: in the transaction that bumps its revision."""
    with factory() as session:
        rule = session.get(AlertRule, rule_id)
        assert rule is not None
        for key, value in values.items():
            setattr(rule, key, value)
        session.flush()
        mark_rule_scopes(session, {rule.scope_key})
        session.commit()


def _fence() -> int:
    return 1


def _run(publisher: RulePublisher, job: Job | None = None) -> PassResult:
    job = job or Job()
    result = PassResult(target=Target.PROMETHEUS, trigger=job.trigger, actor="t")
    try:
        publisher.run(job, _fence, result)
    finally:
        publisher.cleanup()
    return result


def test_full_publish_then_one_change_rewrites_one_file(
    publisher: RulePublisher,
    factory: sessionmaker[Session],
    store: RuleFileStore,
    fake: FakePrometheus,
) -> None:
    _seed(factory)
    result = _run(publisher, Job(full=True))
    assert result.files_written == ["group-g0.yml", "group-g1.yml", "group-g2.yml"]
    assert (result.validation, result.reload, result.confirmed, result.result) == (
        Validation.OK,
        Reload.OK,
        True,
        Result.OK,
    )
    assert fake.reloads == 1  # one reload for the whole batch
    assert publisher.status_now().in_sync
    _change(factory, "r1", config={"threshold": 9})
    assert publisher.status_now().out_of_sync == ["g1"]
    # A comparing pass finds the one scope whose desired revision moved on.
    result = _run(publisher)
    assert result.files_written == ["group-g1.yml"]
    assert "> 9" in store.read("group-g1.yml")  # type: ignore[operator]
    nothing = _run(publisher)
    assert nothing.files_written == []
    assert nothing.reload is Reload.NOT_NEEDED
    assert fake.reloads == 2
    assert publisher.status_now().in_sync


def test_files_carry_their_revision_and_prometheus_reports_it(
    publisher: RulePublisher, factory: sessionmaker[Session], store: RuleFileStore
) -> None:
    _seed(factory, groups=1)
    _run(publisher, Job(full=True))
    [state] = publisher.status_now().scopes
    assert state.desired is not None
    assert state.written is not None
    assert state.written.revision == state.desired
    assert state.loaded == state.written
    text = store.read("group-g0.yml") or ""
    assert f"# aami: revision={state.desired} fingerprint={state.written.fingerprint}" in text
    assert f"aami_fingerprint: '{state.written.fingerprint}'" in text


def test_a_missed_reload_is_done_by_the_next_pass(
    publisher: RulePublisher, factory: sessionmaker[Session], fake: FakePrometheus
) -> None:
    """Files already match the database (written before a crash), Prometheus runs the old
    ones: a comparing pass reloads, though no file changes."""
    _seed(factory, groups=2)
    _run(publisher, Job(full=True))
    loaded_before = dict(fake.loaded)
    _change(factory, "r0", config={"threshold": 8})
    fake.mode = "ignore"  # this reload "is lost": Prometheus keeps the old rules
    lost = _run(publisher)
    assert lost.files_written == ["group-g0.yml"]
    assert lost.result is Result.FAILED
    assert lost.reload is Reload.UNCONFIRMED
    assert lost.missing_groups == ["aami-g0"]
    assert fake.loaded == loaded_before
    fake.mode = "ok"
    repaired = _run(publisher)
    assert repaired.files_written == []
    assert repaired.reload is Reload.OK
    assert repaired.confirmed is True
    assert publisher.status_now().in_sync


def test_a_hand_edited_file_is_rewritten_by_a_comparing_pass(
    publisher: RulePublisher, factory: sessionmaker[Session], store: RuleFileStore
) -> None:
    _seed(factory, groups=1)
    _run(publisher, Job(full=True))
    good = store.read("group-g0.yml") or ""
    store.path("group-g0.yml").write_text(good.replace("> 1", "> 1000"))
    [state] = publisher.status_now().scopes
    assert state.written_intact is False
    assert not state.in_sync
    result = _run(publisher)
    assert result.files_written == ["group-g0.yml"]
    assert store.read("group-g0.yml") == good


def test_rejected_reload_restores_the_previous_files(
    publisher: RulePublisher,
    factory: sessionmaker[Session],
    store: RuleFileStore,
    fake: FakePrometheus,
) -> None:
    _seed(factory, groups=1)
    _run(publisher, Job(full=True))
    before = store.read("group-g0.yml")
    _change(factory, "r0", config={"threshold": 7})
    fake.mode = "reject"
    result = _run(publisher)
    assert result.reload is Reload.REJECTED
    assert result.result is Result.ROLLED_BACK
    assert "bad rule" in (result.error or "")
    assert store.read("group-g0.yml") == before
    assert fake.reloads == 3  # the first publish, the rejected one, the re-reload


def test_forbidden_reload_is_reported_not_retried(
    publisher: RulePublisher, factory: sessionmaker[Session], fake: FakePrometheus
) -> None:
    _seed(factory, groups=1)
    fake.mode = "forbidden"
    result = _run(publisher, Job(full=True))
    assert result.reload is Reload.FORBIDDEN
    assert "--web.enable-lifecycle" in (result.error or "")
    assert fake.reloads == 1


def test_unreachable_prometheus_leaves_the_files_written_and_the_reload_pending(
    publisher: RulePublisher, factory: sessionmaker[Session], fake: FakePrometheus
) -> None:
    _seed(factory, groups=1)
    fake.mode = "down"
    result = _run(publisher, Job(full=True))
    assert result.result is Result.PENDING_RELOAD
    assert result.files_written == ["group-g0.yml"]
    assert not publisher.status_now().in_sync
    fake.mode = "ok"
    again = _run(publisher)
    assert again.files_written == []
    assert again.reload is Reload.OK
    assert publisher.status_now().in_sync


def test_deleted_rules_remove_their_file(
    publisher: RulePublisher, factory: sessionmaker[Session], store: RuleFileStore
) -> None:
    _seed(factory, groups=2)
    _run(publisher, Job(full=True))
    with factory() as session:
        session.delete(session.get(AlertRule, "r1"))
        session.flush()
        mark_rule_scopes(session, {"g1"})
        session.commit()
    result = _run(publisher, Job(scopes={"g1"}))
    assert result.files_removed == ["group-g1.yml"]
    assert store.managed() == ["group-g0.yml"]
    assert result.confirmed is True
    assert publisher.status_now().in_sync


def test_validation_failure_keeps_the_good_file(
    publisher: RulePublisher,
    factory: sessionmaker[Session],
    store: RuleFileStore,
    fake: FakePrometheus,
) -> None:
    _seed(factory, groups=2)
    _run(publisher, Job(full=True))
    good = store.read("group-g0.yml")
    with factory() as session:
        template = session.get(AlertTemplate, "t")
        assert template is not None
        template.annotations = {"summary": "{{ not_a_function }}"}
        session.flush()
        mark_rule_scopes(session, {"g0", "g1"})
        session.commit()
    result = _run(publisher, Job(trigger=Trigger.CHANGE))
    assert result.validation is Validation.FAILED
    assert set(result.files_rejected) == {"group-g0.yml", "group-g1.yml"}
    assert "not_a_function" in result.files_rejected["group-g0.yml"]
    assert result.result is Result.FAILED
    assert store.read("group-g0.yml") == good
    assert fake.reloads == 1
    state = publisher.status_now()
    assert state.out_of_sync == ["g0", "g1"]


def test_a_broken_promtool_blames_no_file_and_fails_the_pass(
    publisher: RulePublisher,
    factory: sessionmaker[Session],
    store: RuleFileStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed(factory, groups=2)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_promtool = bin_dir / "promtool"
    fake_promtool.write_text("#!/bin/sh\necho 'promtool: out of memory' >&2\nexit 3\n")
    fake_promtool.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    result = _run(publisher, Job(full=True))
    assert result.validation is Validation.FAILED
    assert result.files_written == []
    assert set(result.files_rejected) == {"group-g0.yml", "group-g1.yml"}
    assert "out of memory" in result.files_rejected["group-g0.yml"]
    assert store.managed() == []


def test_a_refused_reload_names_a_broken_file_aami_does_not_own(
    publisher: RulePublisher,
    factory: sessionmaker[Session],
    store: RuleFileStore,
    fake: FakePrometheus,
) -> None:
    _seed(factory, groups=1)
    _run(publisher, Job(full=True))
    (store.root / "hand-written.yml").write_text("groups:\n- name: x\n  rules:\n  - alert: [\n")
    _change(factory, "r0", config={"threshold": 5})
    fake.mode = "reject"
    result = _run(publisher)
    assert result.result is Result.ROLLED_BACK
    assert "a file AAMI does not own is broken" in (result.error or "")
    assert "hand-written.yml" in (result.error or "")
