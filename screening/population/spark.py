"""Run a rule set's query on Apache Spark (PySpark), from the same plan the DuckDB runner executes.

The plan's query (:class:`screening.population.sql.Plan`) is transpiled by sqlglot into Spark SQL
(``plan.render("spark")``) and run over the store's tables registered as Spark views. Nothing
about the rule set is written twice: the generator is the one of the DuckDB engine, only the
dialect differs (docs/population.md "Spark").

The dictionary tables (the project's unit registry, value sets, text vocabulary applied once per
*distinct* code, unit, text of the store: thousands of rows, not millions) are computed by the
functions of :mod:`screening.population.duckdb` over the same store and shipped to Spark as small
views; the per-patient work (joins, windows, Kleene logic over every row) runs in Spark.

``local[*]`` is used unless ``SCREENING_SPARK_MASTER`` (or ``spark.master`` in the builder) names
a cluster. Spark needs Java 17 or later on the machine.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from datetime import date

import pyarrow as pa

from . import schema

DICTIONARY_PREFIX = "dict_"


class SparkUnavailable(RuntimeError):
    """PySpark or a Java runtime is missing: the message says which and how to get it."""


def java_available() -> bool:
    """A Java runtime Spark can start (``JAVA_HOME`` or ``java`` on the PATH)."""
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return True
    return shutil.which("java") is not None


def spark_session(app: str = "screening"):
    """A Spark session (local mode by default), quiet, with the UTC time zone (dates are calendar dates)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailable(f"--engine spark needs PySpark (pip install 'screening[spark]'): {exc}") from None
    if not java_available():
        raise SparkUnavailable("--engine spark needs a Java runtime (17 or later): install one (e.g. apt-get install "
                               "openjdk-17-jre-headless) or set JAVA_HOME")
    master = os.environ.get("SCREENING_SPARK_MASTER", "local[*]")
    session = (SparkSession.builder.appName(app).master(master)
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", os.environ.get("SCREENING_SPARK_PARTITIONS", "8"))
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.driver.memory", os.environ.get("SCREENING_SPARK_DRIVER_MEMORY", "2g"))
               .config(map=RETENTION_SETTINGS)
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    _quiet_codegen_fallback(session)
    _configure(session)
    return session


RETENTION_SETTINGS = {"spark.sql.ui.retainedExecutions": "20", "spark.ui.retainedJobs": "50",
                      "spark.ui.retainedStages": "50", "spark.ui.retainedTasks": "5000"}
"""How much of its finished work Spark's status store keeps in the driver (defaults 1,000 statements, jobs and
stages, 100,000 tasks; kept even with the UI off). A run of many slices executes hundreds of wide statements:
with the defaults their plans' metrics filled a 2 GB driver's heap by the eighth slice of 100,000 patients
(2026-12-06: 1,009 full collections, 400 s in them). Nothing but the status store reads them."""


def _quiet_codegen_fallback(session) -> None:
    """A wide statement's whole-stage generated Java can exceed the JVM's 64 KB method limit; Spark then runs
    that stage without whole-stage code generation (``spark.sql.codegen.fallback``, on by default; same rows)
    but logs the compiler's failure as an ERROR with a 250-line stack trace on stderr. That logger alone is
    silenced: any other failure still ends the run with Spark's message."""
    try:
        jvm = session.sparkContext._jvm
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
            "org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator", jvm.org.apache.logging.log4j.Level.OFF)
    except Exception:  # noqa: BLE001 - only the log's noise is at stake (another logging backend, a remote JVM)
        pass


# Spark SQL settings the generated statements need, set on every session that runs them (spark_session's and one
# handed to SparkScreener). Constraint propagation off: a Project's constraints substitute each of its aliases into
# every constraint below it, so a record-code table (``rc_<kind>``: a filter OR-ing the rule set's value-set columns
# dc.m0..dc.mN, then ``dc.mI AS dc_mI`` for each) has 2^N variants of that OR; a local checkpoint computes the
# checkpointed plan's constraints (LogicalRDD.fromDataset), so NCT00659217's 20 value sets exhausted a 6 GB heap.
# Constraints only feed optional rewrites (inferred IS NOT NULL filters, pruned filters): results are the same.
SESSION_SETTINGS = {"spark.sql.constraintPropagation.enabled": "false"}


def _configure(session) -> None:
    for key, value in SESSION_SETTINGS.items():
        session.conf.set(key, value)


class SparkScreener:
    """The store as Spark views, and the rule sets' plans run over them."""

    def __init__(self, spark, duck):
        self.spark = spark
        _configure(spark)
        self.duck = duck  # a DuckDB connection over the same store: dictionaries from distinct values
        self.started = time.monotonic()
        # each of the plan's intermediate tables computed apart (plan_stages); SCREENING_SPARK_STAGES=0: one query
        self.staged = os.environ.get("SCREENING_SPARK_STAGES", "1") != "0"
        self.tables: dict = {}  # the store's tables as Spark frames, by name (the views read a slice of them)

    @classmethod
    def from_duckdb(cls, con, spark=None) -> "SparkScreener":
        """Register every table of the store held by DuckDB connection ``con`` as a Spark view."""
        spark = spark or spark_session()
        screener = cls(spark, con)
        for name in schema.TABLES:
            screener._view(name, con.sql(f"SELECT * FROM {name}").to_arrow_table())
        return screener

    @classmethod
    def from_parquet(cls, folder, con, spark=None) -> "SparkScreener":
        """The store's Parquet files read by Spark itself (the way a cluster reads them)."""
        spark = spark or spark_session()
        screener = cls(spark, con)
        for name, table_schema in schema.TABLES.items():
            path = os.path.join(str(folder), f"{name}.parquet")
            if os.path.exists(path):  # the store's columns, of the store's types (as DuckDB's open_store reads them)
                types = _spark_schema(table_schema)
                frame = spark.read.parquet(path)
                screener.tables[name] = frame.select([frame[f.name].cast(f.dataType).alias(f.name)
                                                      for f in types.fields])
                screener.tables[name].createOrReplaceTempView(name)
            else:
                screener._view(name, table_schema.empty_table())
        return screener

    def select_patients(self, low: str | None, high: str | None) -> None:
        """The store's views narrowed to the patients whose ids are from ``low`` up to (not including) ``high``
        (None: no bound), the slice the next trials are screened over; Spark pushes the range into its Parquet
        scans."""
        for name, frame in self.tables.items():
            if low is not None:
                frame = frame.where(frame["patient_id"] >= low)
            if high is not None:
                frame = frame.where(frame["patient_id"] < high)
            frame.createOrReplaceTempView(name)

    def _view(self, name: str, table: pa.Table) -> None:
        spark_schema = _spark_schema(table.schema)
        if table.num_rows == 0:
            frame = self.spark.createDataFrame([], spark_schema)
        else:
            frame = self.spark.createDataFrame(table, schema=spark_schema)  # PySpark 4 reads Arrow tables
        frame.createOrReplaceTempView(name)
        if name in schema.TABLES:
            self.tables[name] = frame

    def screen_trial(self, trial, as_of: date) -> pa.Table:
        """One rule set over the store on Spark: the same columns as the DuckDB runner's result."""
        from .duckdb import build_dictionaries, build_plan_dictionaries
        from .sql import plan as make_plan

        checked = getattr(trial, "checked", trial)
        plan = make_plan(checked, as_of)
        build_dictionaries(self.duck)
        build_plan_dictionaries(self.duck, plan)
        for (name,) in self.duck.execute("SELECT table_name FROM duckdb_tables() WHERE temporary AND "
                                         f"starts_with(table_name, '{DICTIONARY_PREFIX}')").fetchall():
            self._view(name, self.duck.sql(f"SELECT * FROM {name}").to_arrow_table())
        steps = plan_stages(plan, staged=self.staged)
        kept = []
        try:
            for name, text in steps[:-1]:
                kept.append(self._stage(name, self.spark.sql(text)))
            return self.spark.sql(steps[-1][1]).toArrow()
        finally:
            for frame in kept:  # this rule set's intermediate tables: free their blocks for the next one
                frame.unpersist()

    def _stage(self, name: str, frame):
        """``frame`` computed now and registered as view ``name`` with its lineage cut (a local checkpoint): the
        queries that read it see a scan of stored rows, not the query that made them, so their plans stay small."""
        done = frame.localCheckpoint(eager=True)
        done.createOrReplaceTempView(name)
        return done


def spark_sql(plan) -> str:
    """The plan's main query in Spark SQL (its intermediate tables, ``plan.prepare``, are rendered apart by
    :func:`to_spark` and materialised first): see :func:`to_spark`."""
    return to_spark(plan.sql)


def plan_stages(plan, staged: bool = True) -> list[tuple[str, str]]:
    """The plan as Spark statements run in order: (view name, Spark SQL) pairs, each computed and registered
    as a view under its name before the next runs, the last one (name ``""``) the result.

    ``staged``: each step of an intermediate table (the normalised observations' joins and conversions,
    innermost first) is a statement of its own, and so are the record tables (``rc_``/``rt_``), each atom's
    table joined into the main query's per-patient row (``a<k>``, its helper tables kept inline) and that
    row (``layer0``, the atoms' stored rows joined to the patients); the projections over one table (the
    logic layers, the verdicts) stay in the statement that reads them. Spark's analyser and optimiser take
    time that grows faster than the size of a plan (NCT00659217's single query is about 190 KB of SQL), a
    table read by several others is computed once, and ``layer0`` with its atoms inline is one Spark stage
    holding a sorter per sort-merge join and window (bench_rules: 77 sorts), which exhausts a task's execution
    memory (``UNABLE_TO_ACQUIRE_MEMORY``) even on 24 patients. Each statement is a Spark job with a fixed
    cost, so the atoms' own helper tables are not split out. ``SCREENING_SPARK_ATOMS=0`` keeps the atoms
    inline in ``layer0`` (for comparison).
    Without ``staged``: the plan's intermediate tables, then the one main query."""
    steps = []
    for name, query in plan.prepare:
        steps += _stages(_spark_tree(query), name, nested=True) if staged else [(name, to_spark(query))]
    steps += _stages(_spark_tree(plan.sql), "", nested=False) if staged else [("", to_spark(plan.sql))]
    return steps


def _stages(tree, name: str, nested: bool) -> list[tuple[str, str]]:
    """``tree``'s common table expressions as statements (those of nested WITHs too when ``nested``), then
    ``tree`` itself under ``name``."""
    from sqlglot import exp

    ctes = [cte for cte in tree.find_all(exp.CTE)] if nested else list(getattr(tree.args.get("with_"), "expressions", []))
    top = tree.args.get("with_")
    inline = {cte.alias for cte in (top.expressions if top else []) if _projection(cte.this)}
    staged_bodies = [cte.this for cte in ctes if cte.alias not in inline]
    changed = True
    while changed:  # a kept projection read by a staged table is staged too
        changed = False
        for body in staged_bodies:
            for table in body.find_all(exp.Table):
                if table.name in inline:
                    inline.discard(table.name)
                    staged_bodies.append(next(c.this for c in ctes if c.alias == table.name))
                    changed = True
    steps: list[tuple[str, str]] = []
    generator = _generator()

    def visit(node):
        with_ = node.args.get("with_") if isinstance(node, exp.Query) else None
        if with_ is not None:
            for cte in list(with_.expressions):
                if cte.alias in inline:
                    continue
                if nested:
                    visit(cte.this)
                elif os.environ.get("SCREENING_SPARK_ATOMS", "1") != "0":
                    for join in cte.this.args.get("joins") or []:
                        if isinstance(join.this, exp.Subquery) and join.this.alias:
                            alias = join.this.alias
                            steps.append((alias, generator.generate(join.this.this, copy=False)))
                            join.set("this", exp.to_table(alias).as_(alias))
                steps.append((cte.alias, generator.generate(cte.this, copy=False)))
                cte.pop()
            if not with_.expressions:
                node.set("with_", None)
        for child in list(node.iter_expressions()) if nested else []:
            if child is not with_:
                visit(child)

    with _deep():
        visit(tree)
        steps.append((name, generator.generate(tree, copy=False)))
    return steps


def _projection(query) -> bool:
    """A SELECT over one table or view with no join, grouping, window, DISTINCT or subquery."""
    from sqlglot import exp

    if not isinstance(query, exp.Select) or query.args.get("joins") or query.args.get("group") \
            or query.args.get("distinct") or query.args.get("with_"):
        return False
    source = query.args.get("from_")
    if source is None or not isinstance(source.this, exp.Table):
        return False
    return not any(isinstance(n, (exp.Window, exp.Subquery, exp.AggFunc)) for n in query.find_all(exp.Expression))


class _deep:
    """sqlglot walks the tree recursively and a rule set's query nests deeply (one CASE per criterion and
    connective): the recursion limit is raised while it works."""

    def __enter__(self):
        import sys

        self.limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(self.limit, 20000))

    def __exit__(self, *exc):
        import sys

        sys.setrecursionlimit(self.limit)


def _spark_tree(query: str):
    """The DuckDB query parsed by sqlglot, with the rewrites of :func:`_to_spark` applied (still a tree)."""
    import sqlglot

    with _deep():
        # DuckDB's len() is a list's length in the generated query; sqlglot reads len() as a string's
        # LENGTH, so it is spelled array_length() (the same function in DuckDB) before parsing
        text = re.sub(r"\blen\(", "array_length(", query)
        return sqlglot.parse_one(text, read="duckdb").transform(_to_spark)


def to_spark(query: str) -> str:
    """A DuckDB query of the generator in Spark SQL: the DuckDB query parsed by sqlglot into one expression tree, the few
    DuckDB functions sqlglot has no Spark spelling for rewritten in the tree (:func:`_to_spark`), and the
    tree generated in the Spark dialect. sqlglot walks the tree recursively and a rule set's query nests
    deeply (one CASE per criterion and connective), so the recursion limit is raised for it."""
    tree = _spark_tree(query)
    with _deep():
        return _generator().generate(tree, copy=False)


def _generator():
    """sqlglot's Spark generator, keeping each nested WITH where the generator put it.

    sqlglot's Hive-family generators move every nested WITH to the top of the statement (Hive could not nest
    them); Spark 3 and later accept a WITH inside a subquery, and the generator gives each atom's helper
    tables the same local names (``a7r``, ``base`` ...), which hoisted to one WITH would collide or come
    after a reference. Anything sqlglot cannot say in Spark raises instead of being written approximately."""
    from sqlglot.errors import ErrorLevel
    from sqlglot.generators.spark import SparkGenerator

    class NestedWithSpark(SparkGenerator):
        EXPRESSIONS_WITHOUT_NESTED_CTES: set = set()

    return NestedWithSpark(dialect="spark", unsupported_level=ErrorLevel.RAISE)


def _substitute(template: str, **parts):
    """A Spark expression written with placeholder columns ``__name``, each replaced by a copy of a subtree."""
    from sqlglot import exp

    def put(node):
        if isinstance(node, exp.Column) and not node.table and node.name.startswith("__") and node.name[2:] in parts:
            return parts[node.name[2:]].copy()
        return node
    return exp.maybe_parse(template, dialect="spark").transform(put)


def _to_spark(node):
    """DuckDB functions without a Spark spelling in sqlglot, as Spark expressions with the same meaning
    (three-valued: NULL in, NULL out, as in DuckDB)."""
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name in ("list_bool_or", "list_bool_and") and len(node.expressions) == 1:
            # DuckDB: TRUE if any (all) element is TRUE, NULL for an empty list or only NULLs (bool_or semantics)
            items = node.expressions[0]
            test = "exists" if name == "list_bool_or" else "forall"
            return exp.maybe_parse(
                f"CASE WHEN size(filter(__l, __v -> __v IS NOT NULL)) = 0 THEN NULL "
                f"ELSE {test}(filter(__l, __v -> __v IS NOT NULL), __v -> __v) END", dialect="spark"
            ).transform(lambda n: items.copy() if isinstance(n, exp.Column) and n.name == "__l" else n)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "list_reduce" and len(node.expressions) == 2:
        # DuckDB list_reduce(list, lambda acc, x: ...) starts from the first item: Spark's aggregate over the rest,
        # starting from it. NULL list: NULL; an empty list is an error in DuckDB, and so it is here.
        items, step = (part.copy().transform(_to_spark) for part in node.expressions)
        return _substitute("CASE WHEN size(__l) = 0 THEN raise_error('Cannot perform list_reduce on an empty input list') "
                           "ELSE aggregate(slice(__l, 2, size(__l)), element_at(__l, 1), __f) END", l=items, f=step)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "list_reduce" and len(node.expressions) == 3:
        # DuckDB list_reduce(list, lambda acc, x: ..., initial) is Spark's aggregate(list, initial, (acc, x) -> ...)
        items, step, initial = node.expressions
        parts = [part.copy().transform(_to_spark) for part in (items, initial, step)]  # the new node is not revisited
        return exp.Anonymous(this="AGGREGATE", expressions=parts)
    if isinstance(node, exp.DataType) and node.this in (exp.DataType.Type.INT128, exp.DataType.Type.UINT128):
        # DuckDB's HUGEINT (exact integer arithmetic on decimal digits): Spark's widest exact type
        return exp.DataType.build("DECIMAL(38, 0)")
    if isinstance(node, exp.Anonymous) and node.name.lower() == "printf" and len(node.expressions) == 2 \
            and isinstance(node.expressions[0], exp.Literal) and re.fullmatch(r"%(\.\d+)?g", node.expressions[0].name):
        # C's %g (DuckDB) drops trailing zeros ('77', '1e+06'); Java's (Spark) keeps them ('77.0000', '1.00000e+06')
        number = node.expressions[1].copy().transform(_to_spark)
        return _substitute(f"regexp_replace(regexp_replace(printf('{node.expressions[0].name}', CAST(__x AS DOUBLE)), "
                           "'([.][0-9]*?)0+(e|$)', '$1$2'), '[.](e|$)', '$1')", x=number)
    if isinstance(node, exp.Select):
        _expand_star_replace(node)
    if isinstance(node, (exp.Least, exp.Greatest)) and not node.expressions:
        return node.this  # least(x) of one argument is x in DuckDB; Spark wants two or more
    if isinstance(node, exp.IsInf):
        return exp.maybe_parse("abs(__x) = CAST('Infinity' AS DOUBLE)", dialect="spark").transform(
            lambda n: node.this.copy() if isinstance(n, exp.Column) and n.name == "__x" else n)
    return node


def _expand_star_replace(select) -> None:
    """DuckDB's ``SELECT * REPLACE (expr AS col) FROM table`` has no Spark spelling: the star becomes the
    store table's columns (:mod:`schema`), ``col`` computed by ``expr`` in its place. Changes ``select``."""
    from sqlglot import exp

    source = select.args.get("from_") or select.args.get("from")
    for index, item in enumerate(select.expressions):
        if not (isinstance(item, exp.Star) and item.args.get("replace")):
            continue
        table = source.this if source is not None else None
        if not isinstance(table, exp.Table) or table.name not in schema.TABLES or select.args.get("joins"):
            raise ValueError(f"no Spark spelling of {select.sql('duckdb')[:200]}")
        replaced = {alias.alias: alias for alias in item.args["replace"]}
        columns = [replaced[name].copy() if name in replaced else exp.column(name)
                   for name in schema.TABLES[table.name].names]
        select.set("expressions", select.expressions[:index] + columns + select.expressions[index + 1:])
        return


def _spark_schema(arrow_schema: pa.Schema):
    from pyspark.sql import types as T

    def convert(arrow_type):
        if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
            return T.StringType()
        if pa.types.is_float64(arrow_type):
            return T.DoubleType()
        if pa.types.is_boolean(arrow_type):
            return T.BooleanType()
        if pa.types.is_date32(arrow_type):
            return T.DateType()
        if pa.types.is_int32(arrow_type):
            return T.IntegerType()
        if pa.types.is_int64(arrow_type):
            return T.LongType()
        if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
            return T.ArrayType(convert(arrow_type.value_type))
        if pa.types.is_struct(arrow_type):
            return T.StructType([T.StructField(f.name, convert(f.type), True) for f in arrow_type])
        raise TypeError(f"no Spark type for {arrow_type}")

    return T.StructType([T.StructField(f.name, convert(f.type), True) for f in arrow_schema])
