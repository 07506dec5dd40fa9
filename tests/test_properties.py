"""Property tests: any text either compiles or raises our own error with a position inside it;
any JSON either loads as a patient or raises our own error naming a JSON path."""
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from screening import DataError, SourceError, compile_text, patient_from_document
from screening.source import normalise_text

WORDS = st.sampled_from([
    "trial", '"T"', "inclusion", "exclusion", "I1", "E1", '"text"', "=", "ALT", "platelets", "creatinine", "<=", ">",
    "between", "and", "or", "not", "unless", "x", "ULN", "2.5", "100", "10^9/L", "mg/dL", "U/L", "(", ")", ",",
    "at", "least", "of", "condition", "valueset", "v", "ICD10:C00-C96", "within", "6", "months", "fact", "f",
    "review", "age", "sex", "is", "female", "define", "d", "applies", "if", ":", "then", "else", "%", "furlong",
    "known", "#", "\n", "any", "on", "occasions", "draft", "reference", "range", "to", "\u00d7", "\u2264",
])
programs = st.lists(WORDS, max_size=30).map(" ".join)


def _position_inside(text: str, line: int, column: int) -> bool:
    # lines as an editor shows them: CR, LF and CRLF all end a line; a byte-order mark is not text
    lines = normalise_text(text).split("\n")
    if not 1 <= line <= max(len(lines), 1):
        return False
    return 1 <= column <= len(lines[line - 1]) + 1


def _check_compile(text: str) -> None:
    try:
        compile_text(text, "prop.crit")
    except SourceError as exc:
        assert exc.diagnostics
        for d in exc.diagnostics:
            assert _position_inside(text, d.span.line, d.span.column), (d.span, text)
            assert d.render().startswith(f"prop.crit:{d.span.line}:{d.span.column}: ")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_text_compiles_or_fails_with_a_position(text):
    _check_compile(text)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs)
def test_token_soup_compiles_or_fails_with_a_position(body):
    _check_compile('trial "T"\n' + body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
patient_keys = st.sampled_from(["id", "birth_date", "sex", "observations", "conditions", "medications",
                                "procedures", "facts", "version", "resourceType"])
observation = st.fixed_dictionaries({}, optional={
    "code": st.sampled_from(["LOINC:1742-6", "LOINC:777-3", "SNOMED:1", "bad", "LOINC:"]),
    "value": json_values, "unit": st.sampled_from(["U/L", "10^9/L", "mg/dL", "furlong", "", "{score}"]),
    "date": st.sampled_from(["2026-11-10", "2026-02-30", "2026", "yesterday", "2026-13"]),
    "reference_range": json_values,
})
patients = st.one_of(
    json_values,
    st.dictionaries(patient_keys, json_values, max_size=6),
    st.fixed_dictionaries({"id": st.text(max_size=5)}, optional={
        "observations": st.lists(observation, max_size=4),
        "birth_date": st.sampled_from(["1984-03-15", "1984-02-30", "84", "1984"]),
        "conditions": st.lists(st.fixed_dictionaries({"code": st.sampled_from(["ICD10:C50", "ICD9:1"])},
                                                     optional={"onset": json_values}), max_size=3),
        "facts": st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    }),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patients)
def test_arbitrary_json_loads_or_fails_with_a_json_path(document):
    json.dumps(document)  # it is JSON
    try:
        patient_from_document(document, "prop.json")
    except DataError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.path.startswith("$"), problem
            assert exc.render().startswith("prop.json: $")
