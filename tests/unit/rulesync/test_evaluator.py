"""The local evaluator: real promtool and vmalert for validation, MockTransport for HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from aami.rulesync.evaluator import (
    EvaluatorError,
    LoadedGroup,
    Prometheus,
    Stamp,
    Vmalert,
    compare,
    expected_stamps,
    make_evaluator,
)
from tests.unit.rulesync.support import rule_file

# What vmalert 1.79 answers on /api/v1/rules (recorded from the Debian package's binary).
VMALERT_RULES: dict[str, Any] = {
    "status": "success",
    "data": {
        "groups": [
            {
                "name": "aami-global",
                "rules": [
                    {
                        "state": "",
                        "name": "aami_rule_group_info",
                        "query": "vector(1)",
                        "duration": 0,
                        "labels": {
                            "aami_fingerprint": "abc",
                            "aami_revision": "3",
                            "aami_rule_group": "global",
                        },
                        "health": "ok",
                        "type": "recording",
                    },
                    {"state": "inactive", "name": "X", "query": "up == 0", "type": "alerting"},
                ],
                "interval": 60,
                "type": "prometheus",
                "file": "/etc/vmalert/rules/global.yml",
                "concurrency": 1,
            }
        ]
    },
}


def _write(directory: Path, files: dict[str, str]) -> list[Path]:
    directory.mkdir(exist_ok=True)
    paths = []
    for name, text in files.items():
        (directory / name).write_text(text)
        paths.append(directory / name)
    return paths


def _http(handler: Any = None) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler or (lambda r: httpx.Response(404))))


def test_promtool_accepts_good_files_and_names_the_bad_one(tmp_path: Path) -> None:
    prometheus = Prometheus("http://p.test", "promtool", _http())
    good = _write(tmp_path / "good", {"global.yml": rule_file("global", 1)})
    assert prometheus.validate(tmp_path / "good", good) is None
    bad = _write(
        tmp_path / "bad",
        {"global.yml": rule_file("global", 1), "group-a.yml": rule_file("a", 1, expr="up ==")},
    )
    error = prometheus.validate(tmp_path / "bad", bad)
    assert error is not None
    assert error.startswith("group-a.yml: ")
    assert "could not parse expression" in error
    assert str(tmp_path) not in error
    assert "Checking" not in error


def test_a_missing_checker_refuses_the_set(tmp_path: Path) -> None:
    prometheus = Prometheus("http://p.test", str(tmp_path / "no-promtool"), _http())
    paths = _write(tmp_path / "set", {"global.yml": rule_file("global", 1)})
    error = prometheus.validate(tmp_path / "set", paths)
    assert error is not None
    assert "not found" in error
    assert "--promtool" in error


def test_vmalert_dry_run_validates_the_staged_directory(tmp_path: Path) -> None:
    vmalert = Vmalert("http://v.test", "vmalert", _http())
    good = _write(tmp_path / "good", {"global.yml": rule_file("global", 1)})
    assert vmalert.validate(tmp_path / "good", good) is None
    bad = _write(tmp_path / "bad", {"group-a.yml": rule_file("a", 1, expr="up == (")})
    error = vmalert.validate(tmp_path / "bad", bad)
    assert error is not None
    assert 'invalid group "aami-a"' in error
    assert "flag.go" not in error  # vmalert's startup log lines are left out


def test_nothing_to_validate_is_valid(tmp_path: Path) -> None:
    vmalert = Vmalert("http://v.test", "vmalert", _http())
    assert vmalert.validate(tmp_path, []) is None


def test_vmalert_rules_are_read_like_prometheus_rules() -> None:
    vmalert = Vmalert(
        "http://v.test", "vmalert", _http(lambda r: httpx.Response(200, json=VMALERT_RULES))
    )
    assert vmalert.loaded() == [
        LoadedGroup("aami-global", "/etc/vmalert/rules/global.yml", Stamp("3", "abc"))
    ]


def test_reload_403_says_to_enable_the_lifecycle_api() -> None:
    prometheus = Prometheus("http://p.test", "promtool", _http(lambda r: httpx.Response(403)))
    with pytest.raises(EvaluatorError, match=r"--web\.enable-lifecycle"):
        prometheus.reload()


def test_reload_of_an_unreachable_evaluator_says_so() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(EvaluatorError, match=r"cannot reach prometheus at http://p\.test"):
        Prometheus("http://p.test", "promtool", _http(refuse)).reload()


def test_vmalert_reload_falls_back_to_get() -> None:
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(405 if request.method == "POST" else 200)

    Vmalert("http://v.test", "vmalert", _http(handle)).reload()
    assert calls == ["POST", "GET"]


def test_an_answer_without_groups_is_an_error() -> None:
    prometheus = Prometheus(
        "http://p.test", "promtool", _http(lambda r: httpx.Response(200, json={}))
    )
    with pytest.raises(EvaluatorError, match=r"data\.groups"):
        prometheus.loaded()


def test_vmalert_without_any_group_answers_null_and_runs_nothing() -> None:
    # vmalert 1.79 with no rule group: {"status": "success", "data": {"groups": null}}
    empty = {"status": "success", "data": {"groups": None}}
    vmalert = Vmalert("http://v.test", "vmalert", _http(lambda r: httpx.Response(200, json=empty)))
    assert vmalert.loaded() == []


def test_expected_stamps_come_from_the_files() -> None:
    stamps = expected_stamps({"global.yml": rule_file("global", 4)})
    assert list(stamps) == ["aami-global"]
    assert stamps["aami-global"].revision == "4"
    with pytest.raises(ValueError, match="stamp"):
        expected_stamps({"global.yml": "groups:\n- name: aami-global\n  rules: []\n"})
    with pytest.raises(ValueError, match="two files"):
        expected_stamps({"global.yml": rule_file("a", 1), "group-a.yml": rule_file("a", 1)})


def test_compare() -> None:
    want = {"aami-global": Stamp("2", "f2"), "aami-a": Stamp("5", "fa")}
    ok = [
        LoadedGroup("aami-global", "/r/global.yml", Stamp("2", "f2")),
        LoadedGroup("aami-a", "/r/group-a.yml", Stamp("5", "fa")),
        LoadedGroup("aami-self", "/etc/prometheus/rules/aami.yml", None),  # static, unstamped
    ]
    assert compare(want, ok) == []
    assert compare(want, ok[:1]) == ["aami-a: not loaded"]
    old = [ok[0], LoadedGroup("aami-a", "/r/group-a.yml", Stamp("4", "fa"))]
    assert compare(want, old) == ["aami-a: runs revision 4, want revision 5"]
    gone = [*ok, LoadedGroup("aami-b", "/r/group-b.yml", Stamp("1", "fb"))]
    assert compare(want, gone) == ["aami-b: still loaded from /r/group-b.yml"]


def test_make_evaluator_defaults() -> None:
    http = _http()
    assert make_evaluator("prometheus", None, None, http).url == "http://localhost:9090"
    assert make_evaluator("vmalert", None, None, http).url == "http://localhost:8880"
    with pytest.raises(ValueError, match="unknown evaluator kind"):
        make_evaluator("thanos", None, None, http)
