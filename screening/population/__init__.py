"""Population screening: the checked rule set compiled to SQL over a normalised store (docs/population.md).

* :mod:`.schema`: the store's tables (Arrow schemas; DuckDB DDL);
* :mod:`.loader`: patient documents -> the store's tables, in Python (tests, small populations);
* :mod:`.dictionaries`: the project's readers (units, codes, texts, scores) once per distinct value;
* :mod:`.sql`: the generator, IR -> one query (sqlglot renders it for DuckDB, Spark ...);
* :mod:`.duckdb`: run it on DuckDB, results as Arrow.
"""
from .sql import Plan, Unsupported, compile_sql, plan

__all__ = ["Plan", "Unsupported", "compile_sql", "plan"]
