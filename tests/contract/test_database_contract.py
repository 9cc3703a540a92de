"""The relational store contract, run against SQLite and PostgreSQL; and the ``:name`` translation for psycopg."""

from __future__ import annotations

import threading

import pytest

from smartcity.backends.database import Database, open_database
from smartcity.backends.database.postgres import to_psycopg
from tests.contract.conftest import IMPLEMENTATIONS, open_implementation


@pytest.fixture(params=IMPLEMENTATIONS)
def database(request, tmp_path) -> Database:
    database = open_implementation(request, open_database, f"sqlite:///{tmp_path}/contract.db", "database_url")
    yield database
    database.close()


@pytest.fixture
def table(database, unique) -> str:
    name = f"contract_{unique}"
    database.execute(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, speed REAL, note TEXT)")
    yield name
    database.execute(f"DROP TABLE IF EXISTS {name}")


def test_named_parameters_insert_and_query(database, table):
    assert database.execute(f"INSERT INTO {table} (id, name, speed) VALUES (:id, :name, :speed)", {"id": 1, "name": "A1", "speed": 42.5}) == 1
    assert database.query(f"SELECT id, name, speed, note FROM {table} WHERE name = :name", {"name": "A1"}) == [
        {"id": 1, "name": "A1", "speed": 42.5, "note": None}
    ]


def test_colons_and_percents_in_literals_are_not_parameters(database, table):
    database.execute(f"INSERT INTO {table} (id, name, note) VALUES (:id, 'x:y', '50% at 10:30')", {"id": 7})
    rows = database.query(f"SELECT name, note, ':not_a_parameter' AS literal FROM {table} WHERE id = :id AND note LIKE '50%'", {"id": 7})
    assert rows == [{"name": "x:y", "note": "50% at 10:30", "literal": ":not_a_parameter"}]


def test_executemany_counts_every_row(database, table):
    rows = [{"id": i, "name": f"s{i}", "speed": i * 1.5} for i in range(50)]
    assert database.executemany(f"INSERT INTO {table} (id, name, speed) VALUES (:id, :name, :speed)", rows) == 50
    assert database.execute(f"UPDATE {table} SET note = 'fast' WHERE speed > :limit", {"limit": 30}) == 29
    assert database.query(f"SELECT COUNT(*) AS n FROM {table}") == [{"n": 50}]


def test_transaction_commits_together_or_rolls_back_together(database, table):
    with database.transaction():
        database.execute(f"INSERT INTO {table} (id, name) VALUES (1, 'kept')")
        database.execute(f"INSERT INTO {table} (id, name) VALUES (2, 'kept')")
    with pytest.raises(RuntimeError), database.transaction():
        database.execute(f"INSERT INTO {table} (id, name) VALUES (3, 'lost')")
        raise RuntimeError("handler failed")
    assert [row["id"] for row in database.query(f"SELECT id FROM {table} ORDER BY id")] == [1, 2]


def test_nested_transaction_rolls_back_only_its_own_part(database, table):
    with database.transaction():
        database.execute(f"INSERT INTO {table} (id, name) VALUES (1, 'outer')")
        with pytest.raises(ValueError), database.transaction():
            database.execute(f"INSERT INTO {table} (id, name) VALUES (2, 'inner')")
            raise ValueError("inner failed")
    assert database.query(f"SELECT id FROM {table}") == [{"id": 1}]


def test_a_failed_statement_in_executemany_writes_nothing(database, table):
    rows = [{"id": 1, "name": "a"}, {"id": 1, "name": "duplicate"}]
    with pytest.raises(Exception):
        database.executemany(f"INSERT INTO {table} (id, name) VALUES (:id, :name)", rows)
    assert database.query(f"SELECT COUNT(*) AS n FROM {table}") == [{"n": 0}]


def test_executescript_runs_every_statement(database, unique):
    script = f"""
        CREATE TABLE script_{unique} (id INTEGER PRIMARY KEY, label TEXT DEFAULT 'a;b');
        -- a comment; with a semicolon
        INSERT INTO script_{unique} (id) VALUES (1);
        INSERT INTO script_{unique} (id, label) VALUES (2, 'c');
    """
    try:
        database.executescript(script)
        assert database.query(f"SELECT id, label FROM script_{unique} ORDER BY id") == [
            {"id": 1, "label": "a;b"}, {"id": 2, "label": "c"}
        ]
    finally:
        database.execute(f"DROP TABLE IF EXISTS script_{unique}")


def test_threads_each_write_through_their_own_connection(database, table):
    def insert(first: int) -> None:
        for i in range(first, first + 20):
            database.execute(f"INSERT INTO {table} (id, name) VALUES (:id, 't')", {"id": i})

    threads = [threading.Thread(target=insert, args=(n * 100,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert database.query(f"SELECT COUNT(*) AS n FROM {table}") == [{"n": 80}]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT :a::text, x::int FROM t", "SELECT %(a)s::text, x::int FROM t"),
        ("SELECT ':a', \"col:b\", E'it\\'s :c', $$ :d $$, $tag$ :e $tag$ FROM t", None),
        ("SELECT 1 -- :a\n, /* :b */ :c", "SELECT 1 -- :a\n, /* :b */ %(c)s"),
        ("SELECT * FROM t WHERE name LIKE 'a%' AND id = :id", "SELECT * FROM t WHERE name LIKE 'a%%' AND id = %(id)s"),
        ("SELECT '100%'", None),
    ],
)
def test_named_parameters_become_psycopg_placeholders(sql, expected):
    translated, has_params = to_psycopg(sql)
    assert translated == (expected or sql)
    assert has_params == (expected is not None)


def test_insert_new_skips_rows_already_there_and_repeats_within_the_batch(database, table):
    columns = ("id", "name", "speed")
    assert database.insert_new(table, columns, [(1, "a", 1.5), (2, "b", None)]) == 2
    # a redelivered batch: 1 and 2 again, 3 twice, 4 new
    assert database.insert_new(table, columns, [(1, "changed", 9.0), (2, "b", None), (3, "c", 3.0),
                                                (3, "c-again", 3.0), (4, "d", 4.0)]) == 2
    rows = database.query(f"SELECT id, name, speed FROM {table} ORDER BY id")
    assert rows == [{"id": 1, "name": "a", "speed": 1.5}, {"id": 2, "name": "b", "speed": None},
                    {"id": 3, "name": "c", "speed": 3.0}, {"id": 4, "name": "d", "speed": 4.0}]


def test_insert_new_rolls_back_with_its_transaction(database, table):
    with pytest.raises(RuntimeError), database.transaction():
        database.insert_new(table, ("id", "name"), [(1, "lost")])
        raise RuntimeError("handler failed")
    assert database.insert_new(table, ("id", "name"), [(1, "kept")]) == 1
    assert database.query(f"SELECT name FROM {table}") == [{"name": "kept"}]


def test_upsert_inserts_new_keys_replaces_known_ones_and_the_last_repeat_wins(database, table):
    assert database.upsert(table, [{"id": 1, "name": "a", "speed": 1.5}, {"id": 2, "name": "b", "speed": None}],
                           key=("id",)) == 2
    # a replayed batch: 1 changed, 2 unchanged, 3 twice (the last one stays), note left alone (not a column here)
    database.execute(f"UPDATE {table} SET note = 'kept' WHERE id = 1")
    assert database.upsert(table, [{"id": 1, "name": "a2", "speed": 2.5}, {"id": 2, "name": "b", "speed": None},
                                   {"id": 3, "name": "c", "speed": 3.0}, {"id": 3, "name": "c2", "speed": 3.5}],
                           key=("id",)) == 3
    assert database.query(f"SELECT id, name, speed, note FROM {table} ORDER BY id") == [
        {"id": 1, "name": "a2", "speed": 2.5, "note": "kept"}, {"id": 2, "name": "b", "speed": None, "note": None},
        {"id": 3, "name": "c2", "speed": 3.5, "note": None}]
    assert database.upsert(table, [], key=("id",)) == 0


def test_upserts_share_a_transaction_and_roll_back_with_it(database, table):
    with database.transaction():  # twice into the same table in one transaction
        database.upsert(table, [{"id": 1, "name": "a"}], key=("id",))
        database.upsert(table, [{"id": 1, "name": "a2"}, {"id": 2, "name": "b"}], key=("id",))
    with pytest.raises(RuntimeError), database.transaction():
        database.upsert(table, [{"id": 2, "name": "lost"}, {"id": 3, "name": "lost"}], key=("id",))
        raise RuntimeError("handler failed")
    assert database.query(f"SELECT id, name FROM {table} ORDER BY id") == [{"id": 1, "name": "a2"},
                                                                             {"id": 2, "name": "b"}]
