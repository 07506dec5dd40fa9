"""The bounded, short-lived memory of screened results behind a card's report link.

A card links to ``/patients/{id}/trials/{trial}?key=K``. The key is random (128 bits), so the
link cannot be guessed from a patient id; the entry lives at most ``ttl`` seconds and at most
``size`` entries are kept (the oldest go first). Nothing is written to disk, and a restart
forgets everything: the record itself stays in the EHR, which can call the hook again.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Stored:
    patient: str
    trial: str
    result: object  # screening.report.PatientResult
    trial_object: object  # screening.compile.Trial
    expires: float


class ReportCache:
    """At most ``size`` results, each for ``ttl`` seconds; thread-safe. ``size`` 0 keeps nothing."""

    def __init__(self, size: int = 1000, ttl: float = 3600.0, clock=time.monotonic):
        self.size = max(0, int(size))
        self.ttl = float(ttl)
        self._clock = clock
        self._items: OrderedDict[str, Stored] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.size > 0 and self.ttl > 0

    def put(self, result, trial) -> str | None:
        """Keep ``result`` and return its key (None when the cache is disabled)."""
        if not self.enabled:
            return None
        key = secrets.token_urlsafe(16)
        now = self._clock()
        with self._lock:
            self._expire(now)
            self._items[key] = Stored(result.patient, result.trial, result, trial, now + self.ttl)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return key

    def get(self, key: str, patient: str, trial: str) -> Stored | None:
        """The stored result for ``key`` if it is still kept and is this patient's for this trial."""
        with self._lock:
            self._expire(self._clock())
            found = self._items.get(key)
        if found is None or found.patient != patient or found.trial != trial:
            return None
        return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _expire(self, now: float) -> None:
        while self._items:
            key, first = next(iter(self._items.items()))
            if first.expires > now:
                break
            del self._items[key]
