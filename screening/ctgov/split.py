"""The bullet splitter: registry criteria text -> one :class:`Bullet` per criterion line."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .draft import _CONTEXT_OK


@dataclass(frozen=True)
class Note:
    """Registry text that is not a criterion, kept as a comment in the rule set.

    ``kind`` is ``"note"`` (a "Note: ..." with no criterion before it to qualify), ``"header"``
    (a sub-heading or a label left without its list: "Target Disease", "Laboratory:") or
    ``"boilerplate"`` ("Other protocol-defined inclusion/exclusion criteria may apply").
    ``after`` is the id of the criterion it follows, None at the start of its section.
    """

    section: str
    text: str
    after: str | None
    kind: str


@dataclass
class Bullet:
    """One criterion line of the registry text.

    ``text`` is the registry text (whitespace collapsed; attached sub-bullets joined with their
    markers); ``context`` the text of the ``...:`` header it was split from, if any; ``heading``
    a section heading that restricts who the line applies to ("Inclusion Criteria for Part 2A
    only:"), None under a plain "Inclusion Criteria:" heading. ``lead_in`` is set when the line
    may continue an earlier one although the registry did not nest it: it follows a header
    ending in ":" that has no sub-bullets (the nesting was lost), or a line ending in "or",
    "and" or ","; the drafter treats it like a context.
    """

    section: str
    ident: str
    text: str
    context: str | None = None
    heading: str | None = None
    number: str | None = None
    lead_in: str | None = None


_MARKER = re.compile(
    r"^(?P<indent>[ \t]*)"
    r"(?P<marker>[-*•·●▪◦‣–]|\d{1,2}(?:\.\d{1,2})*[.)]|\(\d{1,2}\)|[A-Za-z][.)]|\([a-z]\))"
    r"(?:[ \t]+|$)(?P<text>.*)$"
)
_HEADING = re.compile(
    r"^(?P<pre>(?:(?:key|main|major|additional|other|general|specific|study|important|selected)\s+)*)"
    r"(?P<kind>inclusion|exclusion)(?:\s+criteri(?:a|on)s?)?\b(?P<post>[^.;]{0,120}?)\s*:?\s*$",
    re.I,
)
_GENERIC_HEADING_WORDS = {"", "key", "main", "major", "general", "includes", "include", "are", "study"}
_CHOICE_HEADER = re.compile(r"\b(?:any|one|either|at\s+least\s+\w+)\s+(?:\w+\s+){0,2}?of\b|\beither\b", re.I)
# A header whose children count together, so that splitting them would change the meaning in
# either section: "two or more of:", "at least 2 of the following", "all of the following"
# (an exclusion), "none of the following", "only one of", "both of".
_NUMBER_WORD = r"(?:two|three|four|five|six|[2-9])"
_OF_LIST = r"\s+(?:\w+\s+){0,2}?of\s*(?:the\s+following\b|these\b|those\b|:)"
_COUNT_HEADER = re.compile(
    r"\b(?:" + _NUMBER_WORD + r"\s+or\s+more|at\s+least\s+" + _NUMBER_WORD + r"|" + _NUMBER_WORD
    + r"|only\s+one|exactly\s+(?:one|" + _NUMBER_WORD + r")|none|no\s+more\s+than\s+(?:one|" + _NUMBER_WORD + r"))"
    + _OF_LIST, re.I)
# "all of the following" / "both of": a joint condition. Split in an inclusion (and = and), kept
# whole in an exclusion, where separate exclusions would exclude on any one of them.
_ALL_HEADER = re.compile(r"\b(?:all|both|each)" + _OF_LIST, re.I)
# "Note: ...", "NB: ...", "Please note ...": a remark on the criterion before it, not a criterion
_NOTE = re.compile(r"^\W*(?:notes?\b\s*\d*\s*[:.\-]?|n\.?\s?b\.?\s*:|please\s+note\b)", re.I)
# Registry boilerplate that points elsewhere: "NOTE: Other protocol defined Inclusion/Exclusion
# criteria may apply.", "Other criteria may apply", "See protocol for full eligibility criteria".
_BOILERPLATE = re.compile(
    r"^\W*(?:notes?\s*[:.\-]?\s*)?(?:(?:other|additional|further)\s+(?:[\w/-]+\s+){0,4}?criteria\s+(?:may|might|will|could)"
    r"\s+apply|(?:please\s+)?(?:see|refer\s+to)\s+(?:the\s+)?(?:study\s+)?protocol\b)", re.I)
# A line that offers an alternative to the next one: "Treatment-naive; or", "... ULN, OR", "and/or"
_ALTERNATIVE_END = re.compile(r"\b(?:or|and\s*/\s*or)\W*$", re.I)
_JOINT_END = re.compile(r"\band\W*$", re.I)
_ALTERNATIVE_START = re.compile(r"^(?:or|and\s*/\s*or)\b(?!\s*/)", re.I)


@dataclass
class _Item:
    indent: int
    marker: str | None
    lines: list[str]
    children: list["_Item"] = field(default_factory=list)
    together: bool = False          # alternatives joined into one criterion: never split again
    comment: str | None = None      # "header" or "boilerplate": kept as a comment, not a criterion

    @property
    def text(self) -> str:
        return _collapse(" ".join(self.lines))

    @property
    def header(self) -> bool:
        return self.text.endswith(":")


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _raw_items(text: str) -> tuple[list[_Item | str], int | None]:
    """Lines -> items (a marker or a paragraph starts one); headings are returned as strings."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").expandtabs(4).split("\n")
    body = [line for line in lines if line.strip()]
    # Legacy text blocks are hard-wrapped and indented throughout (even the headings): there a
    # marker right after a non-blank line is a wrapped "1)" or "-", not a new bullet. API v2
    # Markdown is not wrapped and starts its top-level lines in the first column.
    wrapped = bool(body) and min(len(line) - len(line.lstrip()) for line in body) >= 2
    items: list[_Item] = []
    previous_blank = True
    for line in lines:
        if not line.strip():
            previous_blank = True
            continue
        match = _MARKER.match(line)
        if match and (previous_blank or not wrapped or not items):
            items.append(_Item(len(match["indent"]), match["marker"], [match["text"]]))
        elif previous_blank or not items:
            items.append(_Item(len(line) - len(line.lstrip()), None, [line.strip()]))
        else:
            items[-1].lines.append(line.strip())
        previous_blank = False
    result: list[_Item | str] = []
    items = [item for item in items if item.text]
    merged: list[_Item] = []
    index = 0
    while index < len(items):       # a lone "OR" between two items makes them one criterion
        item = items[index]
        if re.fullmatch(r"(?i)and\s*/\s*or|or", item.text) and merged and index + 1 < len(items):
            following = items[index + 1]
            merged[-1].lines += [item.text] + ([following.marker] if following.marker else []) + following.lines
            index += 2
            continue
        merged.append(item)
        index += 1
    for item in merged:
        if _HEADING.match(item.text) and (item.marker is None or len(item.text) < 60):
            result.append(item.text)
        else:
            result.append(item)
    base = min((i.indent for i in merged), default=0) if wrapped else None
    return result, base


def _tree(items: list[_Item], base: int | None) -> list[_Item]:
    """Nest items: deeper markers under their parent; paragraphs under a ``...:`` header.

    ``base`` is the indentation of paragraphs in a hard-wrapped legacy text block (None for
    Markdown); there a marker at that indentation ("a. ..." flush with the paragraphs) is read
    as a paragraph too. A ``...:`` item owns the paragraphs that follow it; if it is followed
    directly by deeper markers it owns those instead. An item that took paragraphs is closed:
    the next marker is its sibling (registry text often flattens the nesting).
    """
    roots: list[_Item] = []
    stack: list[_Item] = []            # items that may still take deeper marked children
    owner: _Item | None = None         # a ':' item collecting the paragraphs after it
    took_paragraphs: set[int] = set()

    def paragraph_like(item: _Item) -> bool:
        return item.marker is None or (base is not None and item.indent <= base)

    for item in items:
        if item.comment:
            roots.append(item)              # a sub-heading or boilerplate: not part of any list
            continue
        if paragraph_like(item):
            if owner is not None and (item.marker is None or paragraph_like(owner)):
                owner.children.append(item)
                took_paragraphs.add(id(owner))
                if item.header:                 # a ':' paragraph may head a list of its own
                    stack.append(item)
                    owner = item
                continue
            roots.append(item)
            stack = [item] if item.header else []
            owner = item if item.header else None
            continue
        while stack:
            top = stack[-1]
            if id(top) not in took_paragraphs:
                if paragraph_like(top):
                    deeper = top.indent < item.indent if base is not None else top.indent <= item.indent
                    if top.header and deeper:
                        break
                elif top.indent < item.indent:
                    break
            stack.pop()
        (stack[-1].children if stack else roots).append(item)
        stack.append(item)
        owner = item if item.header else None
    return roots


def _marker_number(marker: str | None) -> str | None:
    if marker is None:
        return None
    core = marker.strip("().")
    core = core.rstrip(")")
    if re.fullmatch(r"\d{1,2}(?:\.\d{1,2})*", core):
        return "_".join(core.split("."))
    if re.fullmatch(r"[A-Za-z]", core):
        return core.lower()
    return None


def _joined(item: _Item) -> str:
    """An item with its attached descendants, each keeping its marker."""
    parts = [item.text]
    for child in item.children:
        marker = f"{child.marker} " if child.marker else ""
        parts.append(marker + _joined(child))
    return _collapse(" ".join(parts))


def _join_alternatives(items: list[_Item], section: str) -> list[_Item]:
    """Keep alternatives together: a line ending in "or" ("Treatment-naive; or") and the line after
    it, or a line starting with "OR", are one criterion (splitting them would turn "or" into
    "and"); in an exclusion section so are a line ending in "and" and the next (excluded only
    when both hold). The later line becomes a child of the earlier, keeping its marker, and the
    group is never split again.
    """
    out: list[_Item] = []
    for item in items:
        item.children = _join_alternatives(item.children, section)
        if out and not item.comment and not out[-1].comment:
            before = _joined(out[-1])
            if (_ALTERNATIVE_END.search(before) or _ALTERNATIVE_START.match(item.text)
                    or (section == "exclusion" and _JOINT_END.search(before))):
                out[-1].children.append(item)
                out[-1].together = True
                continue
        out.append(item)
    return out


def split_criteria(text: str) -> list[Bullet]:
    """The criterion lines of registry criteria text (:func:`split_document` without the notes)."""
    return split_document(text)[0]


def split_document(text: str) -> tuple[list[Bullet], list[Note]]:
    """Split registry criteria text into inclusion and exclusion criterion lines.

    Sections start at headings such as ``Inclusion Criteria:`` or ``Key Exclusion Criteria``
    (text before the first heading counts as inclusion). Each bullet (``-``, ``*``, ``•``,
    ``1.``, ``1)``, ``a.`` ...) or paragraph is one criterion; wrapped lines are joined;
    sub-bullets are attached to their parent, except under a header ending in ``:``, where each
    child becomes its own criterion and the header is kept as ``context`` (in an inclusion
    section, a header offering a choice -- "any of the following:" -- keeps its children
    attached, since splitting would turn an "or" into an "and"). Identifiers keep the
    registry's numbering (``3.`` -> ``I3``; children of ``5.`` -> ``I5a``, ``I5b``) and are
    sequential where the registry has none. Alternatives ("...; or" and the next line) and
    lists that count together ("two or more of the following:") stay one criterion. Notes,
    sub-headings and boilerplate are not criteria: a "Note: ..." is attached to the criterion
    before it (it qualifies it), the others are returned as :class:`Note` (comments).
    """
    bullets: list[Bullet] = []
    notes: list[Note] = []
    section, heading = "inclusion", None
    pending: list[_Item] = []

    def flush() -> None:
        if pending:
            roots = _join_alternatives(_tree(pending, base), section)
            found, remarks = _section_bullets(section, heading, roots, bullets)
            bullets.extend(found)
            notes.extend(remarks)
            pending.clear()

    entries, base = _raw_items(text)
    for entry in entries:
        if isinstance(entry, _Item) and _is_subheading(entry):
            entry.comment = "header"
        elif isinstance(entry, _Item) and _BOILERPLATE.match(entry.text):
            entry.comment = "boilerplate"
        if isinstance(entry, str):
            flush()
            match = _HEADING.match(entry)
            section = match["kind"].lower()
            words = set(match["pre"].lower().split()) | set(match["post"].lower().split())
            heading = None if words <= _GENERIC_HEADING_WORDS else entry
            continue
        pending.append(entry)
    flush()
    return bullets, notes


_ANY_OF_FOLLOWING = re.compile(r"\W*any\s+of\s+the\s+following(?:\s+\w+){0,2}\W*", re.I)
_EXCEPTION_HEADER = re.compile(
    r"\b(?:except|exceptions?|unless|other\s+than|excluding|not\s+including|allowed|permitted|provided|"
    r"providing|as\s+long\s+as|(?:is|are|be)\s+eligible)\b", re.I)
_NEGATED_HEADER = re.compile(
    r"\b(?:not\s+(?:be\s+)?eligible|ineligible|excluded|exclude|must\s+not|will\s+not)\b", re.I)


_REQUIREMENT = re.compile(
    r"[<>≥≤=]|\b(?:must|should|within|least|greater|less|more|fewer|above|below|days?|weeks?|months?|years?|"
    r"ULN|normal)\b", re.I)


def _is_subheading(item: _Item) -> bool:
    """A paragraph such as "Target Disease" or "Medical History and Concurrent Diseases"."""
    words = item.text.split()
    return (item.marker is None and not item.children and len(words) <= 6 and not re.search(r"[\d.;:,()]", item.text)
            and all(w[0].isupper() or w.lower() in ("and", "of", "or", "the", "for", "to", "in") for w in words))


def _splits(item: _Item, section: str) -> bool:
    """Whether an item's children are criteria of their own (rather than parts of the item).

    They are under a header: a line ending in ":", or a short line that only announces labs
    ("Must have adequate organ and bone marrow function."). A header that introduces exceptions
    or permissions ("except for the following:", "providing the following conditions are met:")
    keeps its children, which are not criteria of their own. In an inclusion section two more
    kinds of header keep their children attached, because splitting would turn an "or" into an
    "and": a header offering a choice ("any of the following:", unless it is negated: "patients
    who have any of the following are NOT eligible:") and a list of short options without
    numbers (disease subtypes, drug names).
    """
    if not item.children or item.together:
        return False
    if _COUNT_HEADER.search(item.text) or (section == "exclusion" and _ALL_HEADER.search(item.text)):
        return False
    benign = len(item.text.split()) <= 15 and not _CONTEXT_OK.sub(" ", item.text).strip()
    # "Any of the following abnormalities" (no colon) over a list, in an exclusion: each item excludes
    listed = section == "exclusion" and _ANY_OF_FOLLOWING.fullmatch(item.text) is not None
    if not (item.header or benign or listed):
        return False
    negated = bool(_NEGATED_HEADER.search(item.text))
    if _EXCEPTION_HEADER.search(item.text) and not negated:
        return False
    if section == "exclusion":
        return True
    if _CHOICE_HEADER.search(item.text) and not negated:
        return False
    options = all(len(c.text.split()) <= 10 and not c.children and not _REQUIREMENT.search(c.text)
                  for c in item.children)
    return not options


# A line that the next one completes: "Serum creatinine <= 1.5 x ULN, OR", "Or, if creatinine > 1.5 mg/dL,"
_OPEN_END = re.compile(r"\b(?:or|and|and/or)\W*$|\bif\b[^;:]*,\s*$", re.I)


def _letters(n: int) -> str:
    """0 -> a, 25 -> z, 26 -> aa."""
    text = ""
    while True:
        text = chr(ord("a") + n % 26) + text
        n = n // 26 - 1
        if n < 0:
            return text


def _section_bullets(section: str, heading: str | None, roots: list[_Item],
                     done: list[Bullet]) -> tuple[list[Bullet], list[Note]]:
    """The criteria of one section, with identifiers.

    A criterion's number is the registry's: its own marker (``3.`` -> 3), under a split numbered
    parent the parent's number and its own (``5.`` > ``a.`` -> 5a, ``5.`` > ``1.`` -> 5_1) or a
    letter (5a, 5b, ...). Criteria without one are numbered in order, skipping the numbers the
    registry uses in that section.
    """
    prefix = "I" if section == "inclusion" else "E"
    entries: list[tuple[_Item, str | None, str | None]] = []     # (item, context, number)

    def collect(item: _Item, context: str | None, parent: str | None, index: int) -> None:
        own = _marker_number(item.marker)
        if parent and own:
            number = f"{parent}_{own}" if own[0].isdigit() else f"{parent}{own}"
        elif parent:
            number = f"{parent}{_letters(index)}"
        else:
            number = own
        if not _splits(item, section):
            entries.append((item, context, number))
            return
        inner = _collapse(f"{context} {item.text}") if context else item.text
        for position, child in enumerate(item.children):
            collect(child, inner, number, position)

    for root in roots:
        collect(root, None, None, 0)
    taken = {b.ident for b in done}
    used = {f"{prefix}{number}" for _, _, number in entries if number}
    out: list[Bullet] = []
    notes: list[Note] = []
    sequence = 0
    lead_in = None

    def last() -> str | None:
        before = [b for b in done if b.section == section] + out
        return before[-1].ident if before else None

    for item, context, number in entries:
        text = _joined(item)
        if item.comment or _BOILERPLATE.match(text):
            notes.append(Note(section, text, last(), item.comment or "boilerplate"))
            continue
        if item.marker is None and item.header and not item.children and len(item.text.split()) <= 4 \
                and not re.search(r"\d", item.text):
            notes.append(Note(section, text, last(), "header"))
            continue                         # a label such as "Laboratory:" left without its list
        if _NOTE.match(text):
            if out and out[-1].context == context:
                out[-1].text = _collapse(f"{out[-1].text} {text}")    # it qualifies the line before
            else:
                notes.append(Note(section, text, last(), "note"))
            continue
        if number:
            ident = f"{prefix}{number}"
        else:
            sequence += 1
            while f"{prefix}{sequence}" in used or f"{prefix}{sequence}" in taken:
                sequence += 1
            ident = f"{prefix}{sequence}"
        if ident in taken:                      # the registry used a number twice
            n = 2
            while f"{ident}_{n}" in taken:
                n += 1
            ident = f"{ident}_{n}"
        taken.add(ident)
        out.append(Bullet(section, ident, text, context, heading, number, lead_in))
        if context is None and item.header and not item.children:
            lead_in = text                   # a header whose list the registry flattened
        elif _OPEN_END.search(text):
            lead_in = text                   # the next line completes this one
        elif lead_in is not None and _OPEN_END.search(lead_in):
            lead_in = None
    return out, notes
