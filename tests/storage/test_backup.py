"""The backup covers the whole schema: every table a migrated database holds is either backed up
(the model's tables, from its metadata) or listed as derived, with how a restore rebuilds it."""

from __future__ import annotations

from sqlalchemy import Engine, inspect

from aggregator.storage.backup import DERIVED, backed_up_tables
from aggregator.storage.models import Base


def test_every_table_is_backed_up_or_listed_as_derived(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    backed_up = {table.name for table in backed_up_tables()}
    assert tables - backed_up - set(DERIVED) == set()
    assert backed_up == set(Base.metadata.tables)
    assert backed_up.isdisjoint(DERIVED)


def test_tables_come_after_the_tables_their_foreign_keys_name() -> None:
    order = [table.name for table in backed_up_tables()]
    for position, table in enumerate(backed_up_tables()):
        for key in table.foreign_keys:
            if key.column.table is not table:
                assert order.index(key.column.table.name) < position, (table.name, key)
