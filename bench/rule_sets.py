"""What an evaluator's rule set costs to build: cold (every scope rendered), after one
rule's threshold changed (that scope rendered, the set assembled and hashed again), and a
shard of 1 % of the groups after that change (nothing rendered: its scopes are known).

In process, on SQLite, with the fleet of bench/rules.py (per-group rules, --templates per
group). The whole-fleet set is what an HA pair of Prometheus servers and the `local`
evaluator are served; it is also what `/metrics` and `aami rules status` read.

Run: .venv/bin/python bench/rule_sets.py [--groups 1000,10000] [--templates 10] [--changes 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from aami.alerts import service as alerts
from aami.alerts.models import AlertRule
from aami.alerts.schemas import AlertRuleUpdate
from aami.db.session import make_engine, make_sessionmaker, session_scope
from aami.evaluators.rule_sets import RuleSetCache, rule_set
from rules import populate, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", default="1000,10000")
    parser.add_argument("--templates", type=int, default=10)
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--cold", type=int, default=2, help="cold builds per size")
    args = parser.parse_args()
    for groups in (int(g) for g in args.groups.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            populate(url, groups, args.templates)
            engine = make_engine(url)
            factory = make_sessionmaker(engine)
            shard = [f"grp-{g:04d}" for g in range(0, groups, 100)]
            cold, change, part = [], [], []
            size = 0
            for _ in range(args.cold):
                cache = RuleSetCache()
                with session_scope(factory) as session:
                    started = time.perf_counter()
                    made = rule_set(session, cache, None)
                    cold.append(time.perf_counter() - started)
                size = sum(len(text) for _, text in made.files)
            for n in range(args.changes):
                group = f"grp-{(n * 7919) % groups:04d}"
                with session_scope(factory) as session:
                    rule = session.scalars(
                        select(AlertRule).where(AlertRule.group_id == group).limit(1)
                    ).one()
                    alerts.update_rule(
                        session,
                        actor="bench",
                        rule=rule,
                        data=AlertRuleUpdate(config={"threshold": 1000 + n}),
                    )
                with session_scope(factory) as session:
                    started = time.perf_counter()
                    after = rule_set(session, cache, None)
                    change.append(time.perf_counter() - started)
                    assert after.revision != made.revision
                    made = after
                    started = time.perf_counter()
                    rule_set(session, cache, shard)
                    part.append(time.perf_counter() - started)
            engine.dispose()
        rules = groups * args.templates
        print(
            f"{rules:>7} rules, {groups} files, {size / 1e6:.1f} MB of rule text "
            f"(SQLite, in process)"
        )
        print(f"  cold, every scope rendered:       {summary(cold)}")
        print(f"  one threshold changed, whole set: {summary(change)}")
        print(f"  then a shard of {len(shard):>4} groups:      {summary(part)}")


if __name__ == "__main__":
    main()
