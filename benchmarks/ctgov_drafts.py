"""Measure the registry importer's drafts on the 70-trial sample (issue 9).

    python benchmarks/ctgov_drafts.py [--data ../shared/data/ctgov] [--list] [--judge FILE] [--reviewed FILE ...] [--undrafted FILE]

Imports every row of ``criteria_sample.jsonl`` with :func:`screening.ctgov.convert` and prints:

* lines (registry criterion lines, structured AGE/SEX not counted), lines drafted;
* against the hand annotations of ``inventory/lines.jsonl`` (the first 35 trials): annotated
  lines, lines marked ``computable: yes``, and how many of those are drafted;
* drafts judged right. A drafted **lab** rule is checked automatically against the annotated
  lab entries of its line: every test of the rule (analyte, operator, value, ULN multiple or
  not) must equal an annotated entry, and every annotated entry must be a test of the rule or
  restate one in another unit (same analyte and operator). A draft that fails, a draft whose
  line the inventory rates other than ``yes``, and every non-lab draft (ages, dated events,
  performance scores, investigational agents: the inventory gives no structured value for
  them) and every lab draft with a subgroup or exemption by a condition (``if condition
  liver_metastases then ...``, ``... or condition gilbert_syndrome``: the inventory has no
  structured value for that part) are listed as ``read`` for a person to judge (``--list`` prints them); the figures in
  docs/ctgov-import.md give the result of that reading. Lab drafts are also counted on their
  own line, the automatic check's share of them.

``--undrafted FILE`` (default ``benchmarks/out/undrafted.txt``) lists the annotated lines marked computable that
no draft covers, one a line (trial, section, text): the candidates for coverage.

Every draft is also compiled on its own (a file holding only its value sets, the default lab
window and that criterion): a draft that does not compile is a bug, and so is one the writer had to
replace by `review`; both counts are printed and must be 0.

``--new FILE`` (default ``benchmarks/out/ctgov_drafts_new.jsonl``) receives the rows of ``--judge`` whose
(nctid, id, rule, value-set declarations) are not in any ``--reviewed`` file (default ``../judge/round1.jsonl``
``../judge/round2.jsonl``, the drafts an independent reader has judged, one file per round): the drafts that are
new or changed since the last review that saw them.

``--drafts FILE`` (default ``benchmarks/out/ctgov_drafts_all.jsonl``) receives every draft of the 70 trials (trial, id,
section, family, text, rule, value sets), and ``--baseline FILE`` names such a file from an earlier run: the drafts the
automatic check accepts that are not in it (new or changed since then) are added to ``--new`` too, marked
``"automatic_check": "right"``, so that a reader sees every new draft.

``--judge FILE`` (default ``benchmarks/out/ctgov_drafts_to_judge.jsonl``) writes every draft the
automatic check does not accept -- in the 35 annotated trials and in the 35 others -- one JSON
object a line: trial, id, section, family, registry text (with its header context), the draft rule,
the value sets it declares, why it is not checked automatically, and ``"verdict": null`` for an
independent reader to fill in ("right" / "wrong" and a note).

Matching an imported criterion to annotated lines: same trial and section; the line whose text is
equal after dropping case and punctuation, else every line one text contains (the importer may
keep together what the annotator split, and the other way round), else the line(s) with the best
word overlap (Jaccard >= 0.5).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from screening.compile import compile_text  # noqa: E402
from screening.ctgov import convert, parse_document  # noqa: E402
from screening.ctgov.render import DEFAULT_LAB_WINDOW, _string  # noqa: E402
from screening.errors import SourceError  # noqa: E402

FALLBACK = "the importer's draft did not compile; left for review"


def compiles_alone(nct: str, c) -> bool:
    """Whether a drafted criterion compiles in a file of its own (its value sets, a lab window)."""
    text = "\n".join([f"trial {_string(nct)}", f"lab window {DEFAULT_LAB_WINDOW}", *c.valuesets.values(),
                      f"draft {c.kind} {c.ident} {_string(c.text)} =", f"    {c.rule}", ""])
    try:
        compile_text(text, f"{nct}-{c.ident}.crit")
    except SourceError:
        return False
    return True

GROUP = {
    "ANC": "ANC", "platelets": "platelets", "WBC": "WBC", "hemoglobin": "hemoglobin", "creatinine": "creatinine",
    "creatinine_clearance": "creatinine clearance / GFR", "eGFR": "creatinine clearance / GFR",
    "bilirubin": "total bilirubin", "direct_bilirubin": "direct bilirubin", "ALT": "ALT", "AST": "AST",
    "ALP": "alkaline phosphatase", "albumin": "albumin", "INR": "INR", "HbA1c": "HbA1c", "fasting_glucose": "glucose",
    "BMI": "BMI", "lymphocytes": "lymphocytes", "corrected_calcium": "corrected calcium", "potassium": "potassium",
    "sodium": "sodium", "UPCR": "urine protein creatinine ratio", "urine_protein": "urine protein",
    "weight": "weight",
}
TEST = re.compile(
    r"\b(?P<analyte>" + "|".join(sorted(GROUP, key=len, reverse=True)) + r")\s+"
    r"(?:between\s+(?P<low>[\d.]+)[^a]*?\s+and\s+(?P<high>[\d.]+)|(?P<op><=|>=|<|>)\s+(?P<value>[\d.]+)?\s*(?P<rest>[^()]*?))"
    r"(?=\s+(?:and|or|within)\b|\)|$)")


def norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def words(text: str) -> set[str]:
    return set(norm(text).split())


def number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except (TypeError, ValueError):
        return None


def is_limit(unit: str | None) -> bool:
    return bool(unit) and bool(re.search(r"ULN|UNL|upper\s+limit|normal|LLN", unit, re.I))


def rule_tests(rule: str) -> list[tuple[str, str, float, bool]]:
    """(inventory group, op, value, relative to ULN) for every comparison of a drafted lab rule."""
    out = []
    if rule.startswith(("if condition", "if active condition")):          # a subgroup threshold: test the general branch (else)
        rule = rule.split(" else ", 1)[1]
    for m in TEST.finditer(rule):
        group = GROUP[m["analyte"]]
        if m["low"]:
            out.append((group, ">=", float(m["low"]), False))
            out.append((group, "<=", float(m["high"]), False))
        else:
            rest = m["rest"] or ""
            limit = "ULN" in rest or "LLN" in rest
            value = float(m["value"]) if m["value"] else 1.0
            out.append((group, m["op"], value, limit))
    return out


def entry_tests(entry: dict) -> list[tuple[str, str, float, bool]]:
    op = (entry["op"] or "").strip()
    value = entry["value"] or ""
    group = entry["analyte_group"]
    limit = is_limit(entry["unit"])
    range_ = re.fullmatch(r"\s*([\d.,]+)\s*(?:-|to|–)\s*([\d.,]+)\s*", value)
    if range_ or op in ("between", "range"):
        if range_:
            return [(group, ">=", number(range_[1]), limit), (group, "<=", number(range_[2]), limit)]
        return []
    v = number(value)
    if v is None:
        v = 1.0 if limit else None
    if v is None:
        return []
    return [(group, op, v, limit)]


def score(criterion, line) -> float:
    a, b = norm(criterion.source_text), norm(line["text"])
    if not a or not b:
        return 0.0
    if a == b:
        return 2.0
    if min(len(a), len(b)) >= 20 and (a in b or b in a):
        return 1.5
    x, y = words(criterion.source_text), words(line["text"])
    return len(x & y) / max(1, len(x | y))


def best_lines(criterion, annotated) -> list[dict]:
    """The annotated lines of the same section that match the criterion best (score >= 0.5)."""
    scored = [(score(criterion, line), i) for i, line in enumerate(annotated) if line["section"] == criterion.kind]
    top = max((s for s, _ in scored), default=0.0)
    if top < 0.5:
        return []
    if top == 1.5:                          # containment: every line the criterion contains or is part of
        return [annotated[i] for s, i in scored if s == 1.5]
    return [annotated[i] for s, i in scored if s == top]


def judge(criterion, lines) -> tuple[str, str]:
    """'right' (automatic), or 'read' with the reason a person has to judge it."""
    if criterion.family != "labs":
        return "read", f"{criterion.family} draft: no structured annotation to compare"
    if not lines:
        return "read", "no annotated line matched"
    if any(line["computable"] != "yes" for line in lines):
        return "read", "annotated computable: " + "/".join(sorted({line["computable"] for line in lines}))
    if "condition " in criterion.rule or "medication " in criterion.rule:
        # the thresholds could be compared, but not the subgroup or exemption (liver metastases,
        # Gilbert syndrome, a patient on warfarin): the inventory records no structured value for it
        return "read", "subgroup or exemption by a condition or medication: not in the inventory's lab entries"
    if criterion.rule.startswith("applies if") or criterion.comment:
        # a premise (an age group, a lab-defined subgroup of a heading) or a reading the comment explains
        return "read", "a premise or a reading explained in a comment: not in the inventory's lab entries"
    ours = rule_tests(criterion.rule)
    theirs = [t for line in lines for e in line["labs"] for t in entry_tests(e)]
    if not ours:
        return "read", "rule not parsed"
    for test in ours:
        if not any(test[0] == t[0] and test[1] == t[1] and test[3] == t[3] and abs(test[2] - t[2]) < 1e-9
                   for t in theirs):
            return "read", f"test {test} not among the annotated entries {theirs}"
    for t in theirs:
        if not any(t[0] == o[0] and t[1] == o[1] for o in ours):
            return "read", f"annotated entry {t} not in the rule"
    return "right", ""


def judge_row(nct: str, c, annotated: bool, reason: str) -> dict:
    return {"nctid": nct, "id": c.ident, "section": c.kind, "family": c.family, "annotated_trial": annotated,
            "text": c.text, "rule": c.rule, "valuesets": list(c.valuesets.values()), "comment": c.comment,
            "why_not_automatic": reason, "verdict": None, "note": None}


def reviewed_key(row: dict) -> tuple:
    """What a review judged: the draft's trial, id and rule, and the codes of its value sets (a value set
    whose codes changed under an unchanged rule, e.g. `condition stroke_history`, is a changed draft)."""
    return row["nctid"], row["id"], row["rule"], tuple(sorted(row.get("valuesets") or ()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ctgov")
    parser.add_argument("--list", action="store_true", help="print every draft that needs reading")
    parser.add_argument("--judge", type=Path, default=ROOT / "benchmarks" / "out" / "ctgov_drafts_to_judge.jsonl",
                        help="where to write the drafts the automatic check does not accept (JSON lines)")
    parser.add_argument("--reviewed", type=Path, nargs="+",
                        default=[ROOT.parent / "judge" / "round1.jsonl", ROOT.parent / "judge" / "round2.jsonl"],
                        help="drafts an independent reader has judged (JSON lines with nctid, id, rule), one file "
                             "per review round")
    parser.add_argument("--new", type=Path, default=ROOT / "benchmarks" / "out" / "ctgov_drafts_new.jsonl",
                        help="where to write the drafts to judge that are not in --reviewed (new or changed)")
    parser.add_argument("--drafts", type=Path, default=ROOT / "benchmarks" / "out" / "ctgov_drafts_all.jsonl",
                        help="where to write every draft (JSON lines)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="every draft of an earlier run (--drafts output): automatically accepted drafts not in it "
                             "are listed in --new too")
    parser.add_argument("--undrafted", type=Path, default=ROOT / "benchmarks" / "out" / "undrafted.txt",
                        help="where to write the annotated lines marked computable that no draft covers")
    args = parser.parse_args()
    rows = [json.loads(x) for x in (args.data / "criteria_sample.jsonl").read_text(encoding="utf-8").splitlines()
            if x.strip()]
    inventory = [json.loads(x) for x in (args.data / "inventory" / "lines.jsonl").read_text(encoding="utf-8")
                 .splitlines() if x.strip()]
    annotated_trials = {line["nctid"] for line in inventory}

    total = drafted = 0
    families = Counter()
    lab_windows = Counter()
    annotated_families = Counter()
    computable = drafted_computable = 0
    verdicts = Counter()
    lab_verdicts = Counter()
    to_read = []
    judge_rows = []
    undrafted = []
    fallbacks = alone_failures = 0
    all_rows = []
    automatic_rows = []
    for row in rows:
        result = convert(parse_document(json.dumps(row), f"{row['nctid']}.json"))
        lines = result.registry_lines
        total += len(lines)
        drafted += len(result.drafted)
        fallbacks += sum(c.comment == FALLBACK for c in lines)
        for c in result.drafted:
            all_rows.append(judge_row(row["nctid"], c, row["nctid"] in annotated_trials, None))
            families[c.family] += 1
            alone_failures += not compiles_alone(row["nctid"], c)
            if c.family in ("labs", "scores"):
                lab_windows["text" if " within " in c.rule else "default"] += 1
        if row["nctid"] not in annotated_trials:
            for c in result.drafted:
                judge_rows.append(judge_row(row["nctid"], c, False, "trial not annotated in the inventory"))
            continue
        annotated = [line for line in inventory if line["nctid"] == row["nctid"]]
        covered = {id(line) for c in result.drafted for line in best_lines(c, annotated)}
        for line in annotated:
            if line["computable"] != "yes":
                continue
            computable += 1
            drafted_computable += id(line) in covered
            if id(line) not in covered:
                undrafted.append(f"{row['nctid']} {line['section']}: {line['text']}")
        for c in result.drafted:
            annotated_families[c.family] += 1
            verdict, reason = judge(c, best_lines(c, annotated))
            verdicts[verdict] += 1
            if c.family == "labs":
                lab_verdicts[verdict] += 1
            if verdict == "read":
                to_read.append((row["nctid"], c, reason))
                judge_rows.append(judge_row(row["nctid"], c, True, reason))
            else:
                automatic_rows.append({**judge_row(row["nctid"], c, True, None), "automatic_check": "right"})

    args.judge.parent.mkdir(parents=True, exist_ok=True)
    args.judge.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in judge_rows), encoding="utf-8")
    reviewed = set()
    read_files = [path for path in args.reviewed if path.is_file()]
    for path in read_files:
        reviewed |= {reviewed_key(r) for r in map(json.loads, filter(str.strip, path.read_text(
            encoding="utf-8").splitlines()))}
    new_rows = [r for r in judge_rows if reviewed_key(r) not in reviewed]
    new_automatic = []
    if args.baseline is not None and args.baseline.is_file():
        earlier = {reviewed_key(r) for r in map(json.loads, filter(str.strip, args.baseline.read_text(
            encoding="utf-8").splitlines()))}
        new_automatic = [r for r in automatic_rows if reviewed_key(r) not in earlier]
    args.drafts.parent.mkdir(parents=True, exist_ok=True)
    args.drafts.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in all_rows), encoding="utf-8")
    args.undrafted.parent.mkdir(parents=True, exist_ok=True)
    args.undrafted.write_text("".join(u + "\n" for u in undrafted), encoding="utf-8")
    args.new.parent.mkdir(parents=True, exist_ok=True)
    args.new.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in new_rows + new_automatic),
                        encoding="utf-8")
    print(f"trials: {len(rows)} ({len(annotated_trials)} annotated)")
    print(f"lines: {total}; drafted: {drafted} ({drafted / total:.1%}) "
          f"[{', '.join(f'{k} {v}' for k, v in families.most_common())}]")
    print(f"drafted lab and score rules: window from the text {lab_windows['text']}, rule-set default {lab_windows['default']}")
    print(f"annotated trials: lines marked computable {computable}; drafted among them {drafted_computable} "
          f"({drafted_computable / max(1, computable):.1%})")
    print(f"drafts in annotated trials: {sum(verdicts.values())}; right by automatic check {verdicts['right']}; "
          f"to read {verdicts['read']} [{', '.join(f'{k} {v}' for k, v in annotated_families.most_common())}]")
    print(f"lab drafts in annotated trials: {sum(lab_verdicts.values())}; right by automatic check "
          f"{lab_verdicts['right']}; to read {lab_verdicts['read']}")
    print(f"drafts that do not compile alone: {alone_failures}; drafts the writer replaced by review: {fallbacks}")
    print(f"drafts for an independent reader: {len(judge_rows)} "
          f"({sum(r['annotated_trial'] for r in judge_rows)} in annotated trials) -> {args.judge}")
    print(f"drafts to judge not in {' + '.join(p.name for p in read_files) or '(no reviewed file)'} "
          f"(new or changed since that review): {len(new_rows)} "
          f"({sum(r['annotated_trial'] for r in new_rows)} in annotated trials) -> {args.new}")
    if args.baseline is not None:
        print(f"drafts the automatic check accepts that are not in {args.baseline.name} (new or changed): "
              f"{len(new_automatic)} -> {args.new} (marked automatic_check: right)")
    if args.list:
        for nct, c, reason in to_read:
            print(f"\n{nct} {c.ident} ({c.kind}, {c.family}): {reason}\n  text: {c.text}\n  rule: {c.rule}")


if __name__ == "__main__":
    main()
