"""The run-search filter language: parser units, then the compiled SQL against a real
database (SQLite, and a throwaway PostgreSQL database)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import Engine, insert, select

from infra.postgres import provide_database
from modelyard.core.errors import InvalidParameter
from modelyard.core.store.engine import open_engine
from modelyard.core.store.schema import experiments, latest_metrics, params, runs, tags
from modelyard.tracking.search import (
    And,
    Comparison,
    Not,
    Or,
    OrderKey,
    parse_filter,
    parse_order_by,
)
from modelyard.tracking.search_sql import apply_order, compile_filter

# -- parser --------------------------------------------------------------------------


def test_blank_filter_is_none() -> None:
    assert parse_filter("") is None
    assert parse_filter("   \n") is None
    assert parse_filter(None) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.acc = 1", Comparison("metric", "acc", "=", 1)),
        ("metrics.acc != 1.5", Comparison("metric", "acc", "!=", 1.5)),
        ("metrics.acc <> 1.5", Comparison("metric", "acc", "!=", 1.5)),
        ("metrics.acc < -2", Comparison("metric", "acc", "<", -2)),
        ("metrics.acc <= 1e-3", Comparison("metric", "acc", "<=", 0.001)),
        ("metrics.acc>.5", Comparison("metric", "acc", ">", 0.5)),
        ("metrics.acc >= 2.", Comparison("metric", "acc", ">=", 2.0)),
        ("metrics.acc >= -1.5E2", Comparison("metric", "acc", ">=", -150.0)),
        ("params.lr = '0.1'", Comparison("param", "lr", "=", "0.1")),
        ('params.lr = "0.1"', Comparison("param", "lr", "=", "0.1")),
        ("params.m LIKE 'rf%'", Comparison("param", "m", "LIKE", "rf%")),
        ("params.m not like 'rf%'", Comparison("param", "m", "NOT LIKE", "rf%")),
        ("params.m ILIKE 'RF%'", Comparison("param", "m", "ILIKE", "RF%")),
        ("params.m NOT ILIKE 'RF%'", Comparison("param", "m", "NOT ILIKE", "RF%")),
        ("tags.t IN ('a', \"b\")", Comparison("tag", "t", "IN", ("a", "b"))),
        ("tags.t NOT IN ('a')", Comparison("tag", "t", "NOT IN", ("a",))),
        ("metrics.m IN (1, 2.5)", Comparison("metric", "m", "IN", (1, 2.5))),
        ("metrics.m BETWEEN 1 AND 2", Comparison("metric", "m", "BETWEEN", (1, 2))),
        ("metrics.m NOT BETWEEN 1 AND 2", Comparison("metric", "m", "NOT BETWEEN", (1, 2))),
        ("tags.t IS NULL", Comparison("tag", "t", "IS NULL", None)),
        ("tags.t is not null", Comparison("tag", "t", "IS NOT NULL", None)),
        ("attributes.start_time > 5", Comparison("attribute", "start_time", ">", 5)),
        ("attributes.status = 'FINISHED'", Comparison("attribute", "status", "=", "FINISHED")),
    ],
)
def test_each_comparator(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "entity", "key"),
    [
        ("metric.acc = 1", "metric", "acc"),
        ("param.lr = 'x'", "param", "lr"),
        ("tag.t = 'x'", "tag", "t"),
        ("attribute.status = 'x'", "attribute", "status"),
        ("attr.status = 'x'", "attribute", "status"),
        ("run.status = 'x'", "attribute", "status"),
        ("attributes.name = 'x'", "attribute", "run_name"),
        ("attributes.run_name = 'x'", "attribute", "run_name"),
        ("METRICS.acc = 1", "metric", "acc"),
        ("tags.mlflow.runName = 'x'", "tag", "mlflow.runName"),
        ("params.a-b/c_d.e = 'x'", "param", "a-b/c_d.e"),
        ("metrics.`my metric` = 1", "metric", "my metric"),
        ('metrics."my metric" = 1', "metric", "my metric"),
        ("tags.`a``b` = 'x'", "tag", "a`b"),
    ],
)
def test_operands_aliases_and_quoted_keys(text: str, entity: str, key: str) -> None:
    node = parse_filter(text)
    assert isinstance(node, Comparison)
    assert (node.entity, node.key) == (entity, key)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("params.p = 'it''s'", "it's"),
        ("params.p = 'it\\'s'", "it's"),
        ('params.p = "say ""hi"""', 'say "hi"'),
        ('params.p = "say \\"hi\\""', 'say "hi"'),
        ("params.p = 'a\\\\b'", "a\\b"),
        ("params.p LIKE 'a\\_b'", "a\\_b"),
        ("params.p = ''", ""),
    ],
)
def test_string_escapes(text: str, value: str) -> None:
    node = parse_filter(text)
    assert isinstance(node, Comparison)
    assert node.value == value


A = Comparison("metric", "a", ">", 1)
B = Comparison("param", "b", "=", "x")
C = Comparison("tag", "c", "=", "y")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.a > 1 OR params.b = 'x' AND tags.c = 'y'", Or((A, And((B, C))))),
        ("metrics.a > 1 AND params.b = 'x' OR tags.c = 'y'", Or((And((A, B)), C))),
        ("(metrics.a > 1 OR params.b = 'x') AND tags.c = 'y'", And((Or((A, B)), C))),
        ("NOT metrics.a > 1 AND params.b = 'x'", And((Not(A), B))),
        ("NOT (metrics.a > 1 AND params.b = 'x')", Not(And((A, B)))),
        ("not not metrics.a > 1", Not(Not(A))),
        ("metrics.a > 1 and params.b = 'x' AND tags.c = 'y'", And((A, B, C))),
        ("metrics.a > 1 or (params.b = 'x' or tags.c = 'y')", Or((A, B, C))),
        ("((metrics.a > 1))", A),
        (
            "metrics.a > 1 AND metrics.a BETWEEN 1 AND 2",
            And((A, Comparison("metric", "a", "BETWEEN", (1, 2)))),
        ),
    ],
)
def test_boolean_precedence(text: str, expected: object) -> None:
    assert parse_filter(text) == expected


def _error(text: str) -> str:
    with pytest.raises(InvalidParameter) as info:
        parse_filter(text)
    return info.value.message


def test_number_for_param_says_how_to_quote_it() -> None:
    assert _error("params.lr = 0.1") == (
        "Invalid filter at position 12: params.lr: expected a quoted string, got 0.1 "
        "— write params.lr = '0.1'"
    )
    assert "write params.lr IN ('0.1')" in _error("params.lr IN ('x', 0.1)")
    assert "write tags.team = 'vision'" in _error("tags.team = vision")


def test_string_for_metric_says_to_unquote_it() -> None:
    assert _error("metrics.acc > '0.5'") == (
        "Invalid filter at position 14: metrics.acc: expected a number, got '0.5' "
        "— write metrics.acc > 0.5 without quotes"
    )
    assert "compare metrics.acc with a number" in _error("metrics.acc = 'high'")
    assert "expected a number" in _error("attributes.start_time > '1'")


def test_unknown_attribute_lists_the_valid_ones() -> None:
    msg = _error("attributes.colour = 'red'")
    assert msg.startswith("Invalid filter at position 0: unknown attribute 'colour'; valid")
    for name in ("status", "run_name", "run_id", "start_time", "end_time", "user_id"):
        assert name in msg


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("acc > 1", "at position 0: 'acc' has no entity prefix; write metrics.acc, params.acc"),
        ("status = 'x'", "'status' has no entity prefix; write attributes.status"),
        ("metricz.acc > 1", "unknown entity 'metricz' in 'metricz.acc'"),
        ("metrics. acc > 1", "at position 8: expected a key after 'metrics.'"),
        ("metrics.`` > 1", "the key is empty"),
        ("metrics.acc LIKE 'a%'", "metrics.acc: LIKE matches strings only"),
        ("attributes.end_time ILIKE 'a%'", "ILIKE matches strings only"),
        ("params.lr < '0.1'", "at position 10: params.lr: < compares numbers but params are"),
        ("tags.t BETWEEN 'a' AND 'b'", "BETWEEN compares numbers but tags are strings"),
        ("params.lr = 'abc", "at position 12: unterminated string: add the closing '"),
        ("metrics.`abc > 1", "unterminated key"),
        ("(metrics.a > 1", "at position 14: expected ')' to close the '(' at position 0"),
        ("metrics.a > 1 metrics.b > 2", "at position 14: expected AND, OR or the end"),
        ("metrics.a > 1 AND", "expected a key such as metrics.acc"),
        ("metrics.a IN ()", "expected a number, got ')'"),
        ("metrics.a IN 1", "expected '(' after IN"),
        ("metrics.a IN (1 2)", "expected ',' or ')' in the IN list"),
        ("metrics.a == 1", "at position 10: unknown comparator '=='; write ="),
        ("metrics.a ~ 1", "unexpected character '~'"),
        ("metrics.a 1", "expected a comparator after metrics.a"),
        ("metrics.a BETWEEN 1 OR 2", "expected AND in metrics.a BETWEEN 1 AND <high>"),
        ("metrics.a > 1abc", "malformed number"),
        ("metrics.a > 1e999", "out of range"),
        ("params.p = NULL", "write params.p IS NULL"),
        ("params.p != null", "write params.p IS NOT NULL"),
        ("params.p LIKE 'a\\'", "unterminated string"),
        ("params.p LIKE 'a\\\\\\'", "unterminated string"),
        ('params.p LIKE "a\\\\"', "pattern ends with an unpaired escape"),
        ("metrics.a > ", "expected a number, got the end of the input"),
    ],
)
def test_errors_name_position_and_fix(text: str, fragment: str) -> None:
    assert fragment in _error(text)


def test_order_by() -> None:
    assert parse_order_by(None) == []
    assert parse_order_by([]) == []
    assert parse_order_by(
        ["metrics.acc DESC", "attributes.start_time", "params.lr ASC", "tags.`x y` desc"]
    ) == [
        OrderKey("metric", "acc", False),
        OrderKey("attribute", "start_time", True),
        OrderKey("param", "lr", True),
        OrderKey("tag", "x y", False),
    ]
    assert parse_order_by(["attr.name"]) == [OrderKey("attribute", "run_name", True)]


@pytest.mark.parametrize(
    ("clauses", "fragment"),
    [
        (["metrics.acc DOWN"], "Invalid order_by[0] 'metrics.acc DOWN' at position 12: "),
        (["metrics.acc", "params.lr ASC DESC"], "order_by[1]"),
        ([""], "the clause is empty"),
        (["attributes.colour"], "unknown attribute 'colour'"),
        (["start_time DESC"], "write attributes.start_time"),
        ("metrics.acc DESC", "order_by must be a list of strings"),
    ],
)
def test_order_by_errors(clauses: list[str], fragment: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_order_by(clauses)
    assert fragment in info.value.message


# -- SQL -----------------------------------------------------------------------------

RUN = {name: uuid.UUID(int=n).hex for n, name in enumerate(["r1", "r2", "r3", "r4", "r5"], 1)}
NAME = {run_id: name for name, run_id in RUN.items()}
NAN = float("nan")

# name, status, start, end, user, parent, params, tags, metrics
ROWS = [
    ("alpha", "FINISHED", 1000, 2000, "ann", None,
     {"lr": "0.1", "model": "RandomForest"}, {"team": "Vision", "mlflow.runName": "alpha"},
     {"acc": 0.9, "loss": 0.3}),
    ("Beta", "FAILED", 2000, None, "bob", None,
     {"lr": "0.01", "model": "randomforest"}, {"team": "vision"},
     {"acc": 0.7, "loss": NAN}),
    ("gamma_1", "RUNNING", 3000, None, "ann", None,
     {"lr": "0.1", "model": "xgb"}, {"team": "nlp", "x y": "z"},
     {"acc": 0.8}),
    ("delta%", "FINISHED", 4000, 5000, "carl", None,
     {"model": "a_b*c"}, {},
     {"acc": NAN, "loss": 0.5}),
    ("eps", "KILLED", 5000, 6000, "bob", RUN["r1"],
     {}, {"team": "Vision"},
     {"loss": 0.1}),
]  # fmt: skip


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        "postgresql",
    ],
)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = "sqlite:///" + str(tmp_path_factory.mktemp("search") / "t.db")
        else:
            url = stack.enter_context(provide_database("search"))
        eng = open_engine(url)
        stack.callback(eng.dispose)
        _seed(eng)
        yield eng


def _seed(eng: Engine) -> None:
    with eng.begin() as conn:
        exp_id = conn.execute(
            insert(experiments)
            .values(
                name="search",
                artifact_location="/tmp/a",
                lifecycle_stage="active",
                creation_time=1,
                last_update_time=1,
            )
            .returning(experiments.c.experiment_id)
        ).scalar_one()
        for n, (name, status, start, end, user, parent, ps, ts, ms) in enumerate(ROWS, 1):
            run_id = RUN[f"r{n}"]
            conn.execute(
                insert(runs).values(
                    run_uuid=run_id,
                    name=name,
                    experiment_id=exp_id,
                    user_id=user,
                    status=status,
                    start_time=start,
                    end_time=end,
                    lifecycle_stage="active",
                    artifact_uri=f"/tmp/a/{run_id}",
                    parent_run_id=parent,
                    updated_at=start,
                )
            )
            for key, value in ps.items():
                conn.execute(insert(params).values(run_uuid=run_id, key=key, value=value))
            for key, value in ts.items():
                conn.execute(insert(tags).values(run_uuid=run_id, key=key, value=value))
            for key, value in ms.items():
                nan = value != value
                conn.execute(
                    insert(latest_metrics).values(
                        run_uuid=run_id,
                        key=key,
                        # A NaN point is stored as 0 + is_nan, so a missing NaN guard shows.
                        value=0.0 if nan else value,
                        timestamp=1,
                        step=0,
                        is_nan=nan,
                    )
                )


def _search(eng: Engine, text: str, order_by: list[str] | None = None) -> list[str]:
    stmt = select(runs.c.run_uuid).where(compile_filter(parse_filter(text), eng.dialect.name))
    stmt = apply_order(stmt, parse_order_by(order_by))
    with eng.connect() as conn:
        return [NAME[run_id] for run_id in conn.execute(stmt).scalars()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {"r1", "r2", "r3", "r4", "r5"}),
        # comparisons on metrics, NaN never matches a value comparison
        ("metrics.acc > 0.75", {"r1", "r3"}),
        ("metrics.acc = 0.7", {"r2"}),
        ("metrics.loss < 1", {"r1", "r4", "r5"}),
        ("metrics.loss <= 0.3", {"r1", "r5"}),
        ("metrics.loss >= 0.3", {"r1", "r4"}),
        ("metrics.loss = 0", set()),
        ("metrics.acc != 0.9", {"r2", "r3"}),
        ("metrics.acc IN (0.7, 0.8)", {"r2", "r3"}),
        ("metrics.acc NOT IN (0.7, 0.8)", {"r1"}),
        ("metrics.loss BETWEEN 0.2 AND 0.5", {"r1", "r4"}),
        ("metrics.loss NOT BETWEEN 0.2 AND 0.5", {"r5"}),
        # boolean logic
        ("NOT metrics.acc > 0.75", {"r2", "r4", "r5"}),
        ("NOT metrics.loss < 1", {"r2", "r3"}),
        ("metrics.acc >= 0.8 AND params.lr = '0.1'", {"r1", "r3"}),
        ("metrics.acc > 0.85 OR tags.team = 'nlp'", {"r1", "r3"}),
        ("metrics.acc > 0.85 OR tags.team = 'nlp' AND attributes.status = 'RUNNING'",
         {"r1", "r3"}),
        ("(metrics.acc > 0.85 OR tags.team = 'nlp') AND attributes.status = 'RUNNING'", {"r3"}),
        ("NOT (params.lr = '0.1' OR metrics.loss > 0.4)", {"r2", "r5"}),
        # params and tags: missing keys, != and NOT IN mean "present and different"
        ("params.lr = '0.1'", {"r1", "r3"}),
        ("params.lr != '0.1'", {"r2"}),
        ("NOT params.lr = '0.1'", {"r2", "r4", "r5"}),
        ("params.model IN ('xgb', 'RandomForest')", {"r1", "r3"}),
        ("params.model NOT IN ('xgb', 'RandomForest')", {"r2", "r4"}),
        ("tags.mlflow.runName = 'alpha'", {"r1"}),
        ("tags.`x y` = 'z'", {"r3"}),
        ("params.missing = 'x'", set()),
        # IS NULL: absent key; a NaN metric is present
        ("params.lr IS NULL", {"r4", "r5"}),
        ("params.lr IS NOT NULL", {"r1", "r2", "r3"}),
        ("metrics.acc IS NULL", {"r5"}),
        ("metrics.acc IS NOT NULL", {"r1", "r2", "r3", "r4"}),
        ("tags.`x y` IS NOT NULL", {"r3"}),
        ("attributes.end_time IS NULL", {"r2", "r3"}),
        ("attributes.parent_run_id IS NOT NULL", {"r5"}),
        # LIKE is case-sensitive everywhere, ILIKE is not
        ("params.model LIKE 'Random%'", {"r1"}),
        ("params.model LIKE 'random%'", {"r2"}),
        ("params.model ILIKE 'random%'", {"r1", "r2"}),
        ("params.model NOT ILIKE 'random%'", {"r3", "r4"}),
        ("tags.team LIKE 'V%'", {"r1", "r5"}),
        ("tags.team ILIKE 'VISION'", {"r1", "r2", "r5"}),
        ("params.model NOT LIKE '%o%'", {"r3", "r4"}),
        ("params.model LIKE '_gb'", {"r3"}),
        ("params.model LIKE '%*%'", {"r4"}),
        ("params.model LIKE 'a_b?c'", set()),
        ("params.model LIKE '[a]%'", set()),
        ("params.model LIKE 'a\\_b*c'", {"r4"}),
        ("params.model LIKE 'a\\_b\\*c'", {"r4"}),
        ("params.model LIKE 'a\\_b\\?c'", set()),
        ("attributes.run_name LIKE '%\\%'", {"r4"}),
        ("attributes.run_name LIKE '%\\_1'", {"r3"}),
        ("attributes.run_name ILIKE 'beta'", {"r2"}),
        ("attributes.run_name LIKE 'beta'", set()),
        # attributes
        ("attributes.name = 'Beta'", {"r2"}),
        ("attributes.status != 'FINISHED'", {"r2", "r3", "r5"}),
        ("attributes.status NOT IN ('FINISHED', 'KILLED')", {"r2", "r3"}),
        ("attributes.start_time BETWEEN 2000 AND 4000", {"r2", "r3", "r4"}),
        ("attributes.start_time >= 4000 AND attributes.user_id = 'bob'", {"r5"}),
        ("attributes.end_time > 2500", {"r4", "r5"}),
        ("NOT attributes.end_time > 2500", {"r1", "r2", "r3"}),
        ("attributes.end_time != 2000", {"r4", "r5"}),
        (f"attributes.run_id IN ('{RUN['r1']}', '{RUN['r4']}')", {"r1", "r4"}),
        (f"attributes.parent_run_id = '{RUN['r1']}'", {"r5"}),
        ("NOT attributes.parent_run_id LIKE '%'", {"r1", "r2", "r3", "r4"}),
        ("attributes.artifact_uri LIKE '/tmp/a/%'", {"r1", "r2", "r3", "r4", "r5"}),
        ("attributes.lifecycle_stage = 'active'", {"r1", "r2", "r3", "r4", "r5"}),
        ("attributes.experiment_id = '0'", set()),
        ("attributes.experiment_id LIKE '%'", {"r1", "r2", "r3", "r4", "r5"}),
    ],
)  # fmt: skip
def test_filter_on_database(engine: Engine, text: str, expected: set[str]) -> None:
    assert set(_search(engine, text)) == expected


def test_experiment_id_compares_as_string_or_integer(engine: Engine) -> None:
    with engine.connect() as conn:
        exp_id = str(conn.execute(select(experiments.c.experiment_id)).scalar_one())
    every = {"r1", "r2", "r3", "r4", "r5"}
    assert set(_search(engine, f"attributes.experiment_id = '{exp_id}'")) == every
    assert set(_search(engine, f"attributes.experiment_id IN ('{exp_id}', 'x')")) == every
    assert set(_search(engine, f"attributes.experiment_id != '{exp_id}'")) == set()
    assert set(_search(engine, f"attributes.experiment_id = '0{exp_id}'")) == set()


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (None, ["r5", "r4", "r3", "r2", "r1"]),
        # NaN after every number, runs without the metric last, in both directions
        (["metrics.acc DESC"], ["r1", "r3", "r2", "r4", "r5"]),
        (["metrics.acc"], ["r2", "r3", "r1", "r4", "r5"]),
        (["metrics.loss ASC"], ["r5", "r1", "r4", "r2", "r3"]),
        (["metrics.loss DESC"], ["r4", "r1", "r5", "r2", "r3"]),
        # ties broken by start_time DESC, then run id
        (["params.lr ASC"], ["r2", "r3", "r1", "r5", "r4"]),
        (["params.lr DESC"], ["r3", "r1", "r2", "r5", "r4"]),
        (["params.lr", "metrics.loss DESC"], ["r2", "r1", "r3", "r4", "r5"]),
        (["tags.`x y` desc"], ["r3", "r5", "r4", "r2", "r1"]),
        (["attributes.end_time ASC"], ["r1", "r4", "r5", "r3", "r2"]),
        (["attributes.end_time DESC"], ["r5", "r4", "r1", "r3", "r2"]),
        (["attributes.start_time"], ["r1", "r2", "r3", "r4", "r5"]),
        (["attributes.status", "attributes.user_id DESC"], ["r2", "r4", "r1", "r5", "r3"]),
    ],
)
def test_order(engine: Engine, order_by: list[str] | None, expected: list[str]) -> None:
    assert _search(engine, "", order_by) == expected


def test_filter_and_order_together(engine: Engine) -> None:
    assert _search(engine, "metrics.acc IS NOT NULL OR tags.team = 'Vision'", ["metrics.acc"]) == [
        "r2",
        "r3",
        "r1",
        "r4",
        "r5",
    ]
    assert _search(engine, "params.lr = '0.1'", ["metrics.acc DESC", "params.lr"]) == ["r1", "r3"]
