"""Compile-time scaling: how long parse, check and code generation take on large and deep rule sets.

    python benchmarks/compile_scale.py [--sizes 1,10]

Generates deterministic rule sets in memory (nothing is written) and prints, for each, its size
and the seconds spent in parse (Lark + syntax tree), check and fast-path generation, measured
in the same run. Shapes: realistic machine-generated criteria in the style of
`screening import-ctgov` (registry text on every criterion, reviews, draft lab rules, value
sets) at the given sizes in MB; an else-if chain at the nesting limit; thousands of `or`
alternatives; many criteria with a short rule; a chain of definitions at the nesting limit.
"""
from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from screening.check import check  # noqa: E402
from screening.compile import Trial  # noqa: E402
from screening.limits import MAX_DEPTH  # noqa: E402
from screening.parser import lark_parser, parse  # noqa: E402

WORDS = ("patients with history of active disease treatment within the previous months prior to enrolment "
         "known hypersensitivity investigational product severe hepatic renal impairment defined as greater "
         "than upper limit of normal pregnant breastfeeding women childbearing potential unwilling contraception "
         "[see appendix b] uncontrolled infection hiv hepatitis malignancy except basal cell carcinoma").split()
LABS = [("ALT", "<= {m} x ULN"), ("AST", "<= {m} x ULN"), ("creatinine", "<= {v} mg/dL"), ("platelets", ">= {p} x 10^9/L"),
        ("hemoglobin", ">= {h} g/dL"), ("ANC", ">= {n}/mm3"), ("bilirubin", "<= {m} x ULN"), ("eGFR", ">= {g} mL/min/1.73m2")]


def realistic(target_bytes: int, seed: int = 7) -> str:
    rnd = random.Random(seed)
    parts = ['trial "NCT-GENERATED"\ntitle "A machine-generated rule set"\nlab window 90 days\n',
             'valueset malignancy "malignant neoplasm" = ICD10:C00-C96\n',
             'valueset hepatitis "viral hepatitis" = ICD10:B15-B19, SNOMED:40468003\n']
    size = sum(map(len, parts))
    i = 0
    while size < target_bytes:
        i += 1
        kind = "inclusion" if i % 3 else "exclusion"
        ident = f"{'I' if kind == 'inclusion' else 'E'}{i}"
        text = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(12, 40))).capitalize() + "."
        shape = i % 5
        if shape == 0:
            analyte, test = rnd.choice(LABS)
            rule = f"{analyte} " + test.format(m=rnd.choice((1.5, 2, 2.5, 3)), v=rnd.choice((1.2, 1.5, 2)),
                                               p=rnd.choice((75, 100, 150)), h=rnd.choice((8, 9, 10)),
                                               n=rnd.choice((1000, 1500)), g=rnd.choice((30, 45, 60)))
            decl = f"draft {kind} {ident} \"{text}\" =\n    {rule}\n"
        elif shape == 1:
            decl = (f"{kind} {ident} \"{text}\" =\n    condition malignancy within {rnd.randint(1, 5)} years "
                    f"or active condition hepatitis\n")
        elif shape == 2:
            decl = f"{kind} {ident} \"{text}\" =\n    age between {rnd.randint(12, 25)} and {rnd.randint(50, 80)} years\n"
        else:
            decl = f"{kind} {ident} \"{text}\" =\n    review \"{text}\"\n"
        parts.append(decl)
        size += len(decl)
    return "".join(parts)


def else_if_chain(depth: int) -> str:
    expr = "fact done"
    for i in range(depth):
        expr = f"if age >= {i} then fact f{i} else {expr}"
    return f'trial "T"\ninclusion I1 "chain" = {expr}\n'


def many_ors(n: int) -> str:
    return 'trial "T"\ninclusion I1 "many" = ' + " or ".join(f"fact a{i}" for i in range(n)) + "\n"


def many_criteria(n: int) -> str:
    return 'trial "T"\n' + "".join(f'inclusion I{i} "t" = ALT <= 2.5 x ULN and age >= 18\n' for i in range(n))


def define_chain(n: int) -> str:
    lines = ['trial "T"\n', "define d0 = fact a0\n"]
    lines += [f"define d{i} = d{i - 1} or fact a{i}\n" for i in range(1, n)]
    return "".join(lines) + f'inclusion I1 "chain" = d{n - 1}\n'


def measure(label: str, text: str) -> None:
    gc.collect()
    gc.disable()  # as compile_text does
    t0 = time.perf_counter()
    syntax = parse(text, label)
    t1 = time.perf_counter()
    checked = check(syntax)
    t2 = time.perf_counter()
    trial = Trial(checked)
    t3 = time.perf_counter()
    gc.enable()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| {label} | {len(text) / 1e6:,.2f} MB | {len(trial.criteria):,} | {t1 - t0:.2f} | {t2 - t1:.2f} | "
          f"{t3 - t2:.2f} | **{t3 - t0:.2f}** | {peak:,.0f} MB |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10", help="sizes in MB of the realistic rule sets (default 1,10)")
    args = parser.parse_args()
    t = time.perf_counter()
    lark_parser()
    t1 = time.perf_counter()
    Trial(check(parse('trial "W"\ninclusion I1 "w" = creatinine <= 1.5 mg/dL and platelets >= 100 x 10^9/L\n')))
    print(f"parser built in {t1 - t:.2f} s, unit registry in {time.perf_counter() - t1:.2f} s (once per process; "
          "not in the figures below)\n")
    print("| rule set | size | criteria | parse s | check s | codegen s | total s | process peak RSS so far |")
    print("|---|---|---|---|---|---|---|---|")
    measure(f"else-if chain, {MAX_DEPTH // 2} deep (issue: 16 deep took 27 s, 4.7 GB)", else_if_chain(MAX_DEPTH // 2))
    measure(f"else-if chain, {MAX_DEPTH - 1} deep (the nesting limit)", else_if_chain(MAX_DEPTH - 1))
    measure("10,000 `or` alternatives (issue: 490 hit the recursion limit)", many_ors(10_000))
    measure("define chain at the nesting limit", define_chain(MAX_DEPTH // 2))
    measure("8,000 short criteria (issue: check took 23 s)", many_criteria(8_000))
    for size in (float(s) for s in args.sizes.split(",") if s):
        measure(f"realistic machine-generated, {size:g} MB", realistic(int(size * 1_000_000)))


if __name__ == "__main__":
    main()
