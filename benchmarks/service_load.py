"""Load test of the screening service (screening serve) on localhost, against the same work in-process.

One run, all figures together::

    .venv/bin/python benchmarks/service_load.py                          # 3,000 requests per endpoint
    .venv/bin/python benchmarks/service_load.py --requests 500 --concurrency 4
    .venv/bin/python benchmarks/service_load.py --json                   # also the figures as JSON

What it does, in this order (benchmarks/README.md, "Service load test", says what each figure means):

1. builds the requests from the bundled patient_samples/ (18 patients): for ``POST /screen`` the
   file as it is (patient JSON); for the ``patient-view`` hook a CDS Hooks call whose prefetch
   holds the same patient as FHIR resources (Patient, searchsets of Observation, Condition,
   MedicationRequest, Procedure; facts have no FHIR form and are left out);
2. the baseline: the same work in this process without HTTP, one request after the other
   (JSON parse -> patient_from_document -> Trial.screen -> to_dict -> json.dumps for /screen;
   plus HookRequest validation, prefetch assembly and cards for the hook);
3. starts ``screening serve`` (uvicorn, one process) in a subprocess on a free port, waits for
   ``/health``, and sends N requests per endpoint with httpx from C concurrent tasks, cycling
   through the patients; every answer must be 200;
   the two modes are interleaved in rounds, so that both meet the same load on the machine;
4. sends a few hundred more requests one at a time, for the latency HTTP adds without queueing;
5. prints requests per second, p50 and p99 latency for each, and the ratios HTTP / in-process.

The client and the server share the machine: on 2 cores the figures are those of the pair.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "patient_samples"
HOOK = "/cds-services/screening-patient-view"

SYSTEMS = {"LOINC": "http://loinc.org", "SNOMED": "http://snomed.info/sct", "ICD10": "http://hl7.org/fhir/sid/icd-10",
           "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm", "ATC": "http://www.whocc.no/atc",
           "CPT": "http://www.ama-assn.org/go/cpt"}


# ---------------------------------------------------------------- requests
def _concept(code: str, display: str | None) -> dict:
    system, _, value = code.partition(":")
    coding = {"system": SYSTEMS.get(system, f"urn:local:{system.lower()}"), "code": value}
    if display:
        coding["display"] = display
    return {"coding": [coding], **({"text": display} if display else {})}


def _searchset(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}


def prefetch_of(sample: dict) -> dict:
    """A patient JSON sample as the prefetch an EHR would send (load-test input, not a converter)."""
    pid = sample["id"]
    subject = {"reference": f"Patient/{pid}"}
    patient = {"resourceType": "Patient", "id": pid, "gender": sample.get("sex", "unknown")}
    if sample.get("birth_date"):
        patient["birthDate"] = sample["birth_date"]
    prefetch: dict = {"patient": patient}
    observations = []
    for o in sample.get("observations", []):
        r = {"resourceType": "Observation", "status": "final", "subject": subject,
             "code": _concept(o["code"], o.get("display")), "effectiveDateTime": o["date"]}
        if isinstance(o.get("value"), (int, float)) and not isinstance(o.get("value"), bool):
            r["valueQuantity"] = {"value": o["value"], **({"unit": o["unit"], "system": "http://unitsofmeasure.org",
                                                          "code": o["unit"]} if o.get("unit") else {})}
        else:
            r["valueString"] = str(o.get("value"))
        rr = o.get("reference_range")
        if rr:
            r["referenceRange"] = [{k: {"value": rr[k], "unit": rr.get("unit")} for k in ("low", "high") if k in rr}]
        observations.append(r)
    if "observations" in sample:
        prefetch["observations"] = _searchset(observations) if observations else None
    for key, kind in (("conditions", "Condition"), ("medications", "MedicationRequest"), ("procedures", "Procedure")):
        if key not in sample:
            continue
        resources = []
        for e in sample[key]:
            r = {"resourceType": kind, "subject": subject}
            if kind == "Condition":
                r["code"] = _concept(e["code"], e.get("display"))
                r["onsetDateTime"] = e["onset"]
                if e.get("end"):
                    r["abatementDateTime"] = e["end"]
                r["clinicalStatus"] = {"coding": [{"code": "resolved" if e.get("end") else "active"}]}
            elif kind == "MedicationRequest":
                r.update(status=e.get("status", "active"), intent="order", authoredOn=e["start"],
                         medicationCodeableConcept=_concept(e["code"], e.get("display")))
            else:
                r.update(status="completed", code=_concept(e["code"], e.get("display")), performedDateTime=e["date"])
            resources.append(r)
        prefetch[key] = _searchset(resources) if resources else None
    return prefetch


def hook_call(sample: dict, index: int) -> dict:
    return {"hook": "patient-view", "hookInstance": f"load-{index}", "context": {"patientId": sample["id"]},
            "prefetch": prefetch_of(sample)}


def build_requests() -> tuple[list[bytes], list[bytes]]:
    paths = sorted(SAMPLES.glob("*.json"))
    screen = [p.read_bytes() for p in paths]
    hooks = [json.dumps(hook_call(json.loads(p.read_text()), i)).encode() for i, p in enumerate(paths)]
    return screen, hooks


# ---------------------------------------------------------------- in-process baseline
def in_process(trials_dir: Path, terminology: str | None, as_of: date):
    """The work of each endpoint without HTTP: {"screen": f(body) -> bytes, "hook": f(body) -> bytes}."""
    from screening.patient.load import parse_json, patient_from_document
    from screening.service.app import load_trial_folder
    from screening.service.cards import card_for
    from screening.service.models import HookRequest
    from screening.service.prefetch import assemble

    store = _store(terminology)
    trials = [t.trial for t in load_trial_folder(trials_dir, store)]

    def do_screen(body: bytes) -> bytes:
        record = patient_from_document(parse_json(body.decode(), "request"), "request")
        return json.dumps([t.screen(record, as_of).to_dict() for t in trials], ensure_ascii=False).encode()

    def do_hook(body: bytes) -> bytes:
        call = HookRequest.model_validate(parse_json(body.decode(), "request"))
        assembled = assemble(call.prefetch, call.context.patientId)
        record = patient_from_document(assembled.bundle, "prefetch")
        cards = []
        for t in trials:
            card = card_for(t.screen(record, as_of).to_dict(), title=t.title, source_label="s",
                            report_url="http://x/r", warnings=assembled.warnings)
            if card:
                cards.append(card)
        return json.dumps({"cards": cards}, ensure_ascii=False).encode()

    return {"screen": do_screen, "hook": do_hook}


def run_in_process(work, bodies: list[bytes], start: int, n: int) -> tuple[list[float], float]:
    """n requests one after the other: (latencies, wall seconds)."""
    latencies = []
    began = time.perf_counter()
    for i in range(start, start + n):
        t0 = time.perf_counter()
        work(bodies[i % len(bodies)])
        latencies.append(time.perf_counter() - t0)
    return latencies, time.perf_counter() - began


def _store(terminology: str | None):
    if not terminology or terminology == "none":
        return None
    from screening.cli import open_terminology

    return open_terminology(terminology)


def _figures(latencies: list[float], rates: list[float]) -> dict:
    """Latency percentiles over every request; the rate is the median of the rounds' rates."""
    ordered = sorted(latencies)
    return {"requests": len(latencies), "per_second": statistics.median(rates), "rates": rates,
            "p50_ms": 1000 * statistics.median(ordered),
            "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "mean_ms": 1000 * statistics.fmean(ordered)}


# ---------------------------------------------------------------- over HTTP
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(trials_dir: Path, terminology: str | None, as_of: date, port: int) -> subprocess.Popen:
    command = [str(Path(sys.executable).with_name("screening")), "serve", "--trials", str(trials_dir),
               "--port", str(port), "--as-of", as_of.isoformat(), "--log-level", "warning"]
    if terminology:
        command += ["--terminology", terminology]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ready(server: subprocess.Popen, base: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped (exit {server.returncode}): {server.stderr.read().decode()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not answer /health in time")


async def load(base: str, path: str, bodies: list[bytes], start_at: int, n: int, concurrency: int
               ) -> tuple[list[float], float]:
    """n requests from ``concurrency`` tasks over kept-alive connections: (latencies, wall seconds)."""
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(start_at, start_at + n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        async def worker():
            for i in counter:
                t0 = time.perf_counter()
                response = await client.post(path, content=bodies[i % len(bodies)],
                                             headers={"content-type": "application/json"})
                latencies.append(time.perf_counter() - t0)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    if set(statuses) != {200}:
        raise SystemExit(f"{path}: answers other than 200: {statuses}")
    return latencies, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="requests per endpoint (default 3000)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent client tasks (default 8)")
    parser.add_argument("--trials", type=Path, default=ROOT / "trials")
    parser.add_argument("--terminology", default=str(ROOT / "trials" / "terminology"))
    parser.add_argument("--as-of", default="2026-11-25")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5): requests/s is the "
                        "median of the rounds")
    parser.add_argument("--single", type=int, default=500, help="requests sent one at a time after the rounds, for "
                        "the latency without queueing (default 500)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    args = parser.parse_args()
    as_of = date.fromisoformat(args.as_of)
    screen, hooks = build_requests()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"{len(screen)} sample patients; {args.requests} requests per endpoint; concurrency {args.concurrency}")
    import importlib.util

    fast = [m for m in ("httptools", "uvloop") if importlib.util.find_spec(m)]
    print("server: screening serve, one uvicorn process (" + (", ".join(fast) if fast else "h11, asyncio")
          + "), on localhost; client: httpx.AsyncClient in this process")

    work = in_process(args.trials, args.terminology, as_of)
    bodies = {"screen": screen, "hook": hooks}
    paths = {"screen": "/screen", "hook": HOOK}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(args.trials, args.terminology, as_of, port)
    per_round = max(1, args.requests // args.rounds)
    collected = {(mode, name): ([], []) for mode in ("in-process", "HTTP") for name in bodies}
    load_before = os.getloadavg()
    try:
        wait_ready(server, base)
        for name in bodies:  # warm-up: every patient once, both ways
            run_in_process(work[name], bodies[name], 0, len(bodies[name]))
            asyncio.run(load(base, paths[name], bodies[name], 0, len(bodies[name]), 1))
        for round_ in range(args.rounds):  # interleaved, so that both see the same machine
            for name in bodies:
                start_at = round_ * per_round
                for mode in ("in-process", "HTTP"):
                    if mode == "in-process":
                        latencies, wall = run_in_process(work[name], bodies[name], start_at, per_round)
                    else:
                        latencies, wall = asyncio.run(load(base, paths[name], bodies[name], start_at, per_round,
                                                           args.concurrency))
                    collected[mode, name][0].extend(latencies)
                    collected[mode, name][1].append(per_round / wall)
        single = {}  # one request at a time: the latency HTTP adds, without queueing behind others
        for name in bodies:
            latencies, wall = asyncio.run(load(base, paths[name], bodies[name], 0, args.single, 1))
            single[name] = _figures(latencies, [args.single / wall])
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    inproc = {name: _figures(*collected["in-process", name]) for name in bodies}
    http = {name: _figures(*collected["HTTP", name]) for name in bodies}
    print(f"load average (1 min) before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}; "
          f"{args.rounds} interleaved rounds of {per_round} requests per endpoint and mode")

    print()
    print(f"{'':<44}{'requests/s':>11}{'p50 ms':>9}{'p99 ms':>9}   HTTP / in-process")
    for name in bodies:
        base_figures, figures = inproc[name], http[name]
        print(f"{'POST ' + paths[name]:<44}{figures['per_second']:>11.0f}{figures['p50_ms']:>9.2f}"
              f"{figures['p99_ms']:>9.2f}   {figures['per_second'] / base_figures['per_second']:.2f}x requests/s, "
              f"{figures['p50_ms'] / base_figures['p50_ms']:.1f}x p50")
        print(f"{'  the same work in-process, no HTTP':<44}{base_figures['per_second']:>11.0f}"
              f"{base_figures['p50_ms']:>9.2f}{base_figures['p99_ms']:>9.2f}")
        one = single[name]
        print(f"{'  HTTP, one request at a time':<44}{one['per_second']:>11.0f}{one['p50_ms']:>9.2f}"
              f"{one['p99_ms']:>9.2f}   {one['p50_ms'] / base_figures['p50_ms']:.1f}x p50, "
              f"+{one['p50_ms'] - base_figures['p50_ms']:.2f} ms")
    if args.json:
        print(json.dumps({"in_process": inproc, "http": http, "http_one_at_a_time": single, "requests": args.requests,
                          "concurrency": args.concurrency}, indent=2))


if __name__ == "__main__":
    main()
