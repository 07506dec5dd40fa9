"""Terminology store benchmark: a synthetic SNOMED CT-sized RF2 snapshot, loaded and queried.

    .venv/bin/python benchmarks/terminology.py                    # 370,000 concepts (a few minutes)
    .venv/bin/python benchmarks/terminology.py --concepts 50000   # a quick run
    .venv/bin/python benchmarks/terminology.py --json             # also one JSON object with every figure

The hierarchy is a realistic polyhierarchy: levels of growing then shrinking width down to a
depth of 14, every concept with one parent on the level above and, for half of them, a second
parent near the first (the way SNOMED CT's extra parents share most ancestors), so about 1.5
parents per concept. Files are written in the real RF2 format with valid SCTIDs, then loaded by
``load_paths`` exactly as ``screening terminology load`` does (parse, validate, write, closure).

Figures: load time (and its parts), store file size, closure rows, the mean time of a descendant
test over 100,000 random pairs (half of them true), the expansion of a large subtree, and the
compile time of trials/NCT00659217.crit against the store (its <<SNOMED members mapped onto
synthetic concepts with subtrees of thousands to tens of thousands of codes).
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from screening.terminology import TerminologyStore, load_paths  # noqa: E402
from screening.terminology.rf2 import verhoeff_digit  # noqa: E402

CORE = "900000000000207008"
# relative level widths (root first); scaled to the requested size
SHAPE = [0, 19, 150, 1000, 5000, 15000, 30000, 50000, 62000, 62000, 55000, 45000, 28000, 14000, 3850]


def sctid(item: int, partition: str) -> str:
    body = f"{item}{partition}"
    return body + verhoeff_digit(body)


def generate(folder: Path, concepts: int, seed: int) -> dict:
    rng = random.Random(seed)
    total = sum(SHAPE)
    widths = [1] + [max(1, round(w * (concepts - 1) / total)) for w in SHAPE[1:]]
    levels: list[list[int]] = []
    parents: list[list[int]] = []
    next_id = 0
    for depth, width in enumerate(widths):
        nodes = list(range(next_id, next_id + width))
        next_id += width
        if depth == 0:
            parents.append([])
        else:
            above = levels[-1]
            firsts = sorted(rng.randrange(len(above)) for _ in nodes)   # children ordered by parent: locality
            for node, first in zip(nodes, firsts):
                ps = [above[first]]
                if rng.random() < 0.5 and len(above) > 1:
                    # a second parent near the first, on the level above or (one in four) two levels up
                    pool = levels[-2] if depth >= 2 and rng.random() < 0.25 else above
                    centre = first * len(pool) // len(above)
                    second = pool[min(len(pool) - 1, max(0, centre + rng.randint(-40, 40)))]
                    if second not in ps:
                        ps.append(second)
                parents.append(ps)
        levels.append(nodes)
    ids = [sctid(1000 + n, "00") for n in range(next_id)]
    terminology = folder / "Snapshot" / "Terminology"
    terminology.mkdir(parents=True, exist_ok=True)
    with open(terminology / "sct2_Concept_Snapshot_INT_20990101.txt", "w", newline="") as f:
        f.write("id\teffectiveTime\tactive\tmoduleId\tdefinitionStatusId\r\n")
        for cid in ids:
            f.write(f"{cid}\t20020131\t1\t{CORE}\t900000000000074008\r\n")
    with open(terminology / "sct2_Description_Snapshot-en_INT_20990101.txt", "w", newline="") as f:
        f.write("id\teffectiveTime\tactive\tmoduleId\tconceptId\tlanguageCode\ttypeId\tterm\tcaseSignificanceId\r\n")
        for n, cid in enumerate(ids):
            f.write(f"{sctid(1000 + n, '01')}\t20020131\t1\t{CORE}\t{cid}\ten\t900000000000003001\t"
                    f"Synthetic concept {n} (disorder)\t900000000000448009\r\n")
    edges = 0
    with open(terminology / "sct2_Relationship_Snapshot_INT_20990101.txt", "w", newline="") as f:
        f.write("id\teffectiveTime\tactive\tmoduleId\tsourceId\tdestinationId\trelationshipGroup\ttypeId\t"
                "characteristicTypeId\tmodifierId\r\n")
        for n, ps in enumerate(parents):
            for p in ps:
                edges += 1
                f.write(f"{sctid(1000 + edges, '02')}\t20020131\t1\t{CORE}\t{ids[n]}\t{ids[p]}\t0\t116680003\t"
                        f"900000000000011006\t900000000000451002\r\n")
    return {"concepts": next_id, "is_a": edges, "depth": len(widths) - 1, "ids": ids, "levels": levels,
            "parents_per_concept": edges / max(1, next_id - 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concepts", type=int, default=370_000)
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", type=Path, help="write the release and the store here and keep them")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="terminology-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    release = work / "SnomedCT_Synthetic_INT_20990101"
    store_path = work / "terminology.sqlite"
    store_path.unlink(missing_ok=True)
    figures: dict = {}

    t = time.perf_counter()
    shape = generate(release, args.concepts, args.seed)
    figures["generate_s"] = round(time.perf_counter() - t, 1)
    figures.update({k: shape[k] for k in ("concepts", "is_a", "depth")})
    figures["parents_per_concept"] = round(shape["parents_per_concept"], 2)
    figures["release_mb"] = round(sum(p.stat().st_size for p in release.rglob("*.txt")) / 1e6, 1)

    t = time.perf_counter()
    summary = load_paths(store_path, [release])
    figures["load_s"] = round(time.perf_counter() - t, 1)
    figures["store_mb"] = round(store_path.stat().st_size / 1e6, 1)
    figures["closure_rows"] = summary.closure_rows["SNOMED"]
    figures["closure_rows_per_concept"] = round(summary.closure_rows["SNOMED"] / shape["concepts"], 1)

    t = time.perf_counter()
    load_paths(store_path, [release])
    figures["reload_s"] = round(time.perf_counter() - t, 1)

    rng = random.Random(args.seed + 1)
    ids = shape["ids"]
    with TerminologyStore.open(store_path) as store:
        pairs = []
        for i in range(args.lookups):
            d = rng.choice(ids)
            if i % 2 == 0:
                ancestors = sorted(store.ancestors("SNOMED", d))
                a = rng.choice(ancestors) if ancestors else rng.choice(ids)
            else:
                a = rng.choice(ids)
            pairs.append((d, a))
        store._code_ids.clear()   # measure with a cold code cache
        rounds = []
        hits = 0
        for _ in range(3):
            t = time.perf_counter()
            hits = sum(store.is_descendant("SNOMED", d, a) for d, a in pairs)
            rounds.append((time.perf_counter() - t) / len(pairs) * 1e6)
        figures["descendant_test_us_first_round"] = round(rounds[0], 2)
        figures["descendant_test_us"] = round(statistics.median(rounds), 2)
        figures["descendant_test_true"] = hits

        level = shape["levels"][2]
        sizes = sorted(((len(store.descendants("SNOMED", ids[n])), ids[n]) for n in level[:40]), reverse=True)
        biggest = sizes[0][1]
        t = time.perf_counter()
        codes = store.expand(f"<<SNOMED:{biggest}")
        figures["expand_s"] = round(time.perf_counter() - t, 3)
        figures["expand_codes"] = len(codes)
        t = time.perf_counter()
        for _ in range(100):
            store.expand(f"<<SNOMED:{ids[shape['levels'][6][0]]}")
        figures["expand_small_ms"] = round((time.perf_counter() - t) * 10, 3)
        figures["expand_small_codes"] = len(store.expand(f"<<SNOMED:{ids[shape['levels'][6][0]]}"))

        # the NCT00659217 rule set compiled against the big store: its <<SNOMED members mapped onto
        # synthetic concepts with large subtrees (levels 2 and 3: thousands to tens of thousands of codes)
        import re

        from screening import compile_text

        rule_file = Path(__file__).resolve().parents[1] / "trials" / "NCT00659217.crit"
        text = rule_file.read_text(encoding="utf-8")
        pool = iter([ids[n] for n in shape["levels"][2]] + [ids[n] for n in shape["levels"][3]])
        mapped = re.sub(r"<<SNOMED:\d+", lambda m: f"<<SNOMED:{next(pool)}", text)
        compile_text(mapped, str(rule_file))  # warm the parser and the unit registry (once per process)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            trial = compile_text(mapped, str(rule_file), terminology=TerminologyStore.open(store_path))
            times.append(time.perf_counter() - t)
        figures["nct_compile_s"] = round(min(times), 3)
        figures["nct_compile_s_first"] = round(times[0], 3)
        figures["nct_expanded_codes"] = sum(len(m.exact) for m in trial.checked.matchers)
        figures["nct_members"] = len(re.findall(r"<<SNOMED:", text))

    print(f"synthetic RF2: {figures['concepts']:,} concepts, {figures['is_a']:,} is-a rows "
          f"({figures['parents_per_concept']} parents each), depth {figures['depth']}, {figures['release_mb']} MB")
    print(f"load:          {figures['load_s']} s (reload of the same release {figures['reload_s']} s)")
    print(f"store:         {figures['store_mb']} MB, {figures['closure_rows']:,} closure rows "
          f"({figures['closure_rows_per_concept']} per concept)")
    print(f"descendant test: {figures['descendant_test_us']} us mean over {args.lookups:,} random pairs "
          f"({figures['descendant_test_true']:,} true; first round, cold cache: {figures['descendant_test_us_first_round']} us)")
    print(f"expand largest level-2 subtree: {figures['expand_codes']:,} codes in {figures['expand_s']} s; "
          f"a subtree of {figures['expand_small_codes']} codes in {figures['expand_small_ms']} ms")
    print(f"NCT00659217:   compiled against the store in {figures['nct_compile_s']} s (first of 3: "
          f"{figures['nct_compile_s_first']} s), {figures['nct_members']} <<SNOMED members expanded to "
          f"{figures['nct_expanded_codes']:,} codes")
    if args.json:
        print(json.dumps(figures, indent=2))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
