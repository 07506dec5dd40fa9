"""The record drafter (issue 9): conditions and medications named by the lexicon.

Two families, each reading a whole line or nothing:

* :func:`draft_conditions` -- "History of myocardial infarction", "Known HIV infection", "Known active
  hepatitis B or C", "Stroke within 6 months prior to Cycle 1 Day 1", "No known HIV infection";
* :func:`draft_medications` -- "No prior gemcitabine", "Has prior treatment using an anthracycline",
  "Concurrent use of warfarin or other vitamin K antagonists", "At least 4 weeks since prior
  bevacizumab".

Phrases and codes come from ``lexicon.toml`` (docs/ctgov-import.md, "Lexicon"); a line naming
anything the lexicon does not hold, or any word the patterns below do not read, stays `review`.
"""
from __future__ import annotations

import re

from .draft import Draft, _normalise
from .lexicon import Entry, lexicon

_NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "eight": "8",
                 "twelve": "12"}
_AMOUNT = r"(\d+|one|two|three|four|five|six|eight|twelve)"
_UNIT = r"(day|week|month|year)s?"
_ANCHOR = (
    r"(?:\s*,?\s*(?:prior\s+to|before|of|preceding|from)\s+(?:the\s+)?(?:study\s+)?(?:"
    r"registration|enrol?lment|randomi[sz]ation|screening|study\s+entry|entry|inclusion|"
    r"cycle\s+1,?\s+day\s+1|c1d1|initiation|dosing|signing\s+(?:the\s+)?informed\s+consent|"
    r"(?:starting|start|initiation|first\s+dose|first\s+administration|beginning|day\s+1)(?:\s+of)?(?:\s+the)?"
    r"(?:\s+study)?(?:\s+(?:drug|treatment|therapy|medication|dosing))?"
    r"(?:\s+of\s+(?:the\s+)?(?:study\s+(?:drug|treatment|medication)|investigational\s+(?:product|drug|agent)|"
    r"[A-Za-z][\w-]*))?|"
    r"(?:study\s+|protocol\s+)?(?:drug|treatment|therapy)))?")
_END_TEXT = (
    r"\s*(?:[.;,]\s*)?(?:(?:are|is)\s+(?:excluded|not\s+eligible)(?:\s+for\s+(?:this|the)\s+(?:trial|study))?"
    r"|whatever\s+the\s+anteriority)?\s*[.;]?\s*$")
_END = re.compile(_END_TEXT, re.I)
_WINDOW = re.compile(
    r"\s*,?\s*(?:(?:at\s+any\s+(?:point|time)\s+)?(?:within|in|during)\s+(?:the\s+)?(?:past|last|previous|preceding|prior)?\s*"
    + _AMOUNT + r"\s+" + _UNIT + r"|(?:that\s+(?:is|was)\s+)?(?:<=|<)\s*" + _AMOUNT + r"\s+" + _UNIT + r"(?=\s+(?:prior|before)))"
    + _ANCHOR + "(?=" + _END_TEXT + ")", re.I)



def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _amount(text: str) -> str:
    return _NUMBER_WORDS.get(text.lower(), text)


def _window(match: re.Match) -> str:
    amount = match.group(1) or match.group(3)
    unit = (match.group(2) or match.group(4)).lower()
    return f"within {_amount(amount)} {unit}s"


def _drop_examples(s: str) -> str:
    """Remove brackets that only give examples ("(e.g., HBsAg reactive)"), nested brackets included."""
    out = s
    while True:
        m = re.search(r"[(\[]\s*(?:e\.?\s*g\.?|for\s+example|such\s+as)[\s,:]", out, re.I)
        if m is None:
            return out
        depth, i = 0, m.start()
        while i < len(out):
            if out[i] in "([":
                depth += 1
            elif out[i] in ")]":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        if depth != 0:
            return out                      # unbalanced: leave it, the line will not be read
        out = out[:m.start()].rstrip() + " " + out[i + 1:].lstrip()


# A criterion naming conditions or drugs is a sentence or two; a longer line is a list or a paragraph
# this drafter does not read (and its patterns need not scan it).
_MAX_LINE = 600


def _prepare(text: str) -> str:
    s = _drop_examples(_normalise(text[:_MAX_LINE + 1]))
    return re.sub(r"\s+", " ", s).strip()


class _Reader:
    def __init__(self, s: str):
        self.s = s
        self.pos = 0

    def take(self, pattern: str | re.Pattern) -> re.Match | None:
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.I)
        m = regex.match(self.s, self.pos)
        if m:
            self.pos = m.end()
        return m

    def ended(self) -> bool:
        return _END.fullmatch(self.s, self.pos) is not None


_STATUS = re.compile(r"\s*(?:active|current|ongoing|chronic)(?:\s+or\s+chronic)?\s+", re.I)
_LIST_SEP = re.compile(r"\s*(?:,\s*(?:and\s*/\s*or\s+|or\s+)?|\s+(?:and\s*/\s*or|or)\s+|\s*/\s*)", re.I)


def _items(r: _Reader, record: str, status_words: bool) -> list[tuple[tuple[Entry, ...], bool]] | None:
    """A list of lexicon phrases joined by ',', 'or', 'and/or', '/': (entries, said 'active') each."""
    items = []
    lex = lexicon()
    while True:
        active = bool(status_words and r.take(_STATUS))
        r.take(r"\s*")
        m = lex.match(record, r.s, r.pos)
        if m is None:
            return None
        r.pos = m.end
        items.append((m.entries, active))
        mark = r.pos
        sep = r.take(_LIST_SEP)
        if sep is None:
            break
        after = r.pos
        if status_words:
            r.take(_STATUS)
        r.take(r"\s*")
        if lex.match(record, r.s, r.pos) is None:
            r.pos = mark
            break
        r.pos = after
    return items


# ---------------------------------------------------------------- conditions
_NEGATION = re.compile(r"\s*no\s+", re.I)
_SUBJECT = re.compile(
    r"\s*(?:(?:patients|subjects|participants)\s+(?:with|who\s+have|who\s+are|known\s+to\s+(?:have|be))\s+"
    r"|(?:(?:the\s+)?(?:patient|subject|participant)\s+)?(?:has|have)\s+(?:an?\s+)?|known\s+to\s+(?:have|be)\s+)?", re.I)
_MARKERS = r"(?:(?:known|documented|prior|previous|past|medical|any|an?|received)\s+)*"
_HISTORY = re.compile(
    r"\s*(?P<pre>" + _MARKERS + r")(?:(?P<history>history|hx)\s+of\s+|(?:diagnosis|infection)\s+(?:of|with)\s+)?"
    r"(?P<post>" + _MARKERS + r")", re.I)


# A bracket that defines the state by a test ("(e.g., HBsAg reactive)", "(HCV RNA detected)"): the
# test is part of the criterion (independent review, round 1), so it is drafted only where the
# analyte catalogue has it, and otherwise the line is left for review rather than the test dropped.
_EXAMPLE_TEST = re.compile(
    r"[(\[]\s*(?:e\.?\s*g\.?|for\s+example|such\s+as)[\s,:][^)\]]*?\b(?:HBsAg|RNA|DNA|PCR|antibod(?:y|ies)|antigen|"
    r"sero(?:logy|positiv\w*)|reactive|detect(?:ed|able)|titer|titre|positive)\b", re.I)
# "(HIV 1/2 antibodies)" after HIV: the catalogue's HIV screening test (HIV-1/2 antibody, with p24).
# "Known history" is lifelong and excludes only what is known (independent review, round 2): the
# results are read at any date (`within 200 years`, the language's longest window, not the file's
# lab window), a positive one excludes, and a patient with no HIV test on record is not excluded
# (`HIV_test on record`: false when the observation list holds no HIV test, docs/language.md). An
# indeterminate or unreadable result is on record and stays unknown for `is positive`: never "not excluded".
_HIV_ANTIBODIES = re.compile(r"\s*\(\s*HIV\s*-?\s*1\s*/\s*2\s+antibod(?:y|ies)\s*\)", re.I)
_HIV_TEST = '(HIV_test on record and any HIV_test is positive within 200 years)'
_HIV_COMMENT = ("known history: a positive HIV test at any date excludes; with no HIV test on record, not excluded; "
                "an indeterminate or unreadable one is unknown")


def draft_conditions(text: str, kind: str) -> Draft | None:
    """Conditions the lexicon names, with or without a window. ``None`` when the line says more."""
    if len(text) > _MAX_LINE or _EXAMPLE_TEST.search(text):
        return None
    prepared = _prepare(text)
    hiv_antibodies = bool(_HIV_ANTIBODIES.search(prepared))
    r = _Reader(_HIV_ANTIBODIES.sub("", prepared))
    negated = bool(r.take(_NEGATION))
    if negated != (kind == "inclusion"):
        return None                    # an inclusion must say "No ..."; an exclusion must not
    r.take(_SUBJECT)
    lead = r.take(_HISTORY)
    words = (lead.group("pre") + " " + lead.group("post")).lower().split()
    history = bool(lead.group("history")) or bool({"prior", "previous", "past"} & set(words))
    shared_active = bool(r.take(r"\s*(?:active|current|ongoing)(?:\s+or\s+chronic)?\s+"))
    items = _items(r, "condition", status_words=True)
    if not items:
        return None
    window = r.take(_WINDOW)
    if not r.ended():
        return None
    if re.search(r"whatever\s+the\s+anteriority\s*[.;]?\s*$", r.s, re.I):
        history = True                 # "whatever the anteriority": at any time
    tests, sets = [], {}
    comment = None
    for entries, active in items:
        for entry in entries:
            if window:
                if entry.kind != "event" or active or shared_active:
                    return None
                name, declaration = entry.declaration()
                test = f"condition {name} {_window(window)}"
            elif entry.kind == "lifelong":
                name, declaration = entry.declaration()
                test = f"condition {name}"
            elif history and not active:
                name, declaration = entry.declaration(history=True)
                test = f"condition {name}"
            elif entry.kind == "event" and not (active or shared_active):
                return None            # "Pulmonary embolism" alone: now, or ever?
            else:
                name, declaration = entry.declaration()
                test = f"active condition {name}"
            unsure = entry.unsure_declaration(history=history and not window and not active and entry.kind == "event")
            if unsure is not None:
                # a mixed code (Z86.73: a prior stroke or a TIA only) makes the test unknown, never false
                prefix = test[:test.index("condition ")]
                suffix = test[len(prefix) + len("condition ") + len(name):]
                test = f"{test} or ({prefix}condition {unsure[0]}{suffix} and review {_quote(entry.unsure_question)})"
            if test not in tests:
                tests.append(test)
            sets[name] = declaration
            if unsure is not None:
                sets[unsure[0]] = unsure[1]
    if hiv_antibodies:
        if "condition hiv" not in tests:
            return None                # the antibodies bracket after something else than HIV
        tests.insert(tests.index("condition hiv") + 1, _HIV_TEST)
        comment = _HIV_COMMENT
    rule = " or ".join(tests)
    if negated:
        rule = f"not ({rule})" if " or " in rule else f"not {rule}"
    return Draft(rule, sets, "history", comment)


# ---------------------------------------------------------------- medications
_EVER = re.compile(
    r"\s*(?:(?:has\s+)?(?:received\s+)?(?:prior|previous)\s+(?:treatment|therapy|exposure)\s+(?:with|to|using)\s+"
    r"|(?:has\s+)?received\s+(?:a\s+)?(?:prior|previous)\s+(?:treatment|therapy)\s+with\s+"
    r"|(?:has\s+)?(?:prior|previous)\s+(?:treatment|therapy)\s+(?:with|using)\s+"
    r"|previous\s+exposure\s+to\s+|prior\s+(?:exposure\s+to\s+)?|previous\s+)(?:an?\s+|any\s+)?", re.I)
_CURRENT = re.compile(
    r"\s*(?:(?:patients\s+)?(?:who\s+are\s+)?(?:current|concurrent|concomitant|ongoing)\s+(?:use|treatment|therapy|"
    r"administration)\s+(?:of|with)\s+"
    r"|(?:patients\s+)?(?:(?:who\s+)?requir(?:e|es|ing)|(?:who\s+are\s+)?(?:taking|receiving))\s+"
    r"(?:concurrent\s+administration\s+of\s+|(?:treatment|therapy)\s+with\s+|(?:therapeutic\s+)?anticoagulation\s+with\s+)*"
    r"|condition\s+that\s+requires\s+(?:(?:therapeutic\s+)?anticoagulation\s+with\s+|treatment\s+with\s+)"
    r"|(?:current|concurrent|concomitant)\s+)(?:an?\s+|any\s+)?", re.I)
_TREATMENT_TAIL = re.compile(r"(?:\s+(?:therapy|treatment))?(?:\s+for\s+therapeutic\s+anticoagulation)?", re.I)
# "(Note: low molecular weight heparin is permitted)": a drug outside every value set here
_PERMITTED = re.compile(
    r"\s*[.;]?\s*\(?\s*(?:note\s*:\s*)?low[\s-]+molecular[\s-]+weight\s+heparins?(?:\s*\(\s*LMWH\s*\))?\s+"
    r"(?:is|are)\s+(?:permitted|allowed)\s*\)?", re.I)
_EXPOSED = re.compile(
    r"\s*(?:(?:treatment|therapy)\s+with\s+|use\s+of\s+|receipt\s+of\s+|(?:has\s+)?received\s+(?:an?\s+)?)?", re.I)
# "(6 weeks for nitrosoureas or mitomycin)" after a washout: a longer one for some drugs
_SECOND_WASHOUT = re.compile(r"\s*\(\s*(?:>=|>|at\s+least|more\s+than)?\s*" + _AMOUNT + r"\s+" + _UNIT + r"\s+for\s+", re.I)
# "Chronic concomitant treatment with proton pump inhibitors must discontinue the drug for 7 days prior to registration"
_DISCONTINUE_LEAD = re.compile(
    r"\s*(?:chronic\s+)?(?:concomitant|concurrent)\s+(?:treatment|use|therapy)\s+(?:with|of)\s+", re.I)
_DISCONTINUE = re.compile(
    r"\s+must\s+(?:discontinue|stop|be\s+discontinued|be\s+stopped)\s+(?:the\s+drugs?\s+|them\s+|it\s+)?(?:for\s+)?"
    r"(?:at\s+least\s+)?" + _AMOUNT + r"\s+" + _UNIT + r"\s+(?:prior\s+to|before)\s+(?:the\s+)?(?:study\s+)?"
    r"(?:registration|enrol?lment|randomi[sz]ation|screening|start\s+of\s+(?:the\s+)?study\s+treatment)"
    r"(?:\s+on\s+(?:the\s+)?study)?", re.I)
_SINCE = re.compile(
    r"\s*(?:>=|>|at\s+least|more\s+than)\s*" + _AMOUNT + r"\s+" + _UNIT + r"\s+(?:must\s+have\s+elapsed\s+)?"
    r"(?:since|from)\s+(?:the\s+)?(?:any\s+)?(?:prior|previous|last)\s+(?:dose\s+of\s+|treatment\s+with\s+|therapy\s+with\s+)?",
    re.I)


def _medication_rule(items, template: str) -> Draft:
    tests, sets = [], {}
    for entries, _ in items:
        for entry in entries:
            name, declaration = entry.declaration()
            test = template.format(name)
            unsure = entry.unsure_declaration()
            if unsure is not None:
                # a class wider than its sure codes ("chemotherapy"): a record under the rest of the group makes
                # the test unknown, never true or false
                test = f"{test} or ({template.format(unsure[0])} and review {_quote(entry.unsure_question)})"
                sets[unsure[0]] = unsure[1]
            if test not in tests:
                tests.append(test)
            sets[name] = declaration
    return Draft(" or ".join(tests), sets, "medications")


def _closes_at_end(rule: str, start: int) -> bool:
    """Whether the bracket opening at ``start`` closes at the end of ``rule`` (quoted text skipped)."""
    depth, quoted = 0, False
    for i in range(start, len(rule)):
        ch = rule[i]
        if ch == '"' and rule[i - 1] != "\\":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth == 0:
                return i == len(rule) - 1
    return False


def _join(a: Draft, b: Draft, glue: str) -> Draft:
    def part(rule: str) -> str:
        if rule.startswith("not (") and _closes_at_end(rule, 4):
            return rule                 # one negation of a bracket: `not` binds tighter than `and`
        return f"({rule})" if " or " in rule or " and " in rule else rule
    return Draft(f"{part(a.rule)} {glue} {part(b.rule)}", {**a.valuesets, **b.valuesets}, a.family)


def _negate(draft: Draft) -> Draft:
    rule = f"not ({draft.rule})" if " or " in draft.rule else f"not {draft.rule}"
    return Draft(rule, draft.valuesets, draft.family)


# "Steroids within 3 weeks of enrollment, except: 1. <= 10 mg prednisone or equivalent per day 2. Steroid with little
# to no systemic absorption (ie, topical or inhaled steroids)": a daily dose above the exception, in the window
_STEROID_DOSE = re.compile(
    r"\s*(?:systemic\s+)?(?:cortico)?steroids?(?:\s+(?:therapy|treatment))?\s+within\s+(?:the\s+)?(?:past\s+|last\s+)?"
    + _AMOUNT + r"\s+" + _UNIT + r"(?:\s+(?:of|prior\s+to|before)\s+(?:the\s+)?(?:study\s+)?(?:enrol?lment|registration|"
    r"randomi[sz]ation|screening|first\s+dose))?\s*,?\s*except\s*:?\s*(?:1\s*[.)]\s*)?(?:<=|up\s+to)\s*(?P<dose>\d+(?:\.\d+)?)\s*"
    r"mg\s+(?:of\s+)?prednisone\s+or\s+(?:its\s+)?equivalent\s+(?:per\s+day|daily|/\s*day)\s*[,;]?\s*"
    r"(?:(?:2\s*[.)]|and)\s*(?:cortico)?steroids?\s+with\s+little\s+(?:to|or)\s+no\s+systemic\s+absorption\s*"
    r"(?:\(\s*(?:i\.?\s*e\.?|e\.?\s*g\.?)\s*,?\s*topical\s+(?:or|and|/)\s+inhaled\s+(?:cortico)?steroids?\s*\))?)?\s*[.;]?\s*$", re.I)


def _draft_steroid_dose(s: str, kind: str) -> Draft | None:
    m = _STEROID_DOSE.fullmatch(s)
    if m is None or kind != "exclusion":
        return None
    name, declaration = lexicon().entries["systemic_corticosteroid"].declaration()
    window = f"within {_amount(m.group(1))} {m.group(2).lower()}s"
    return Draft(f"medication {name} with dose > {m.group('dose')} mg/day prednisone equivalent {window}",
                 {name: declaration}, "medications",
                 "the daily total in prednisone equivalents (docs/language.md, Doses) on some day of the window; "
                 "topical and inhaled steroids are outside ATC H02, as the exception says")


def draft_medications(text: str, kind: str) -> Draft | None:
    """Medications and drug classes the lexicon names: ever, now, or within a window."""
    if len(text) > _MAX_LINE:
        return None
    s = _prepare(text)
    steroid = _draft_steroid_dose(s, kind)
    if steroid is not None:
        return steroid
    if kind == "inclusion":
        r = _Reader(s)
        since = r.take(_SINCE)
        if since:
            items = _items(r, "medication", status_words=False)
            r.take(_TREATMENT_TAIL)
            second = None
            if items and (longer := r.take(_SECOND_WASHOUT)):
                # "More than 4 weeks since prior chemotherapy (6 weeks for nitrosoureas or mitomycin)"
                more = _items(r, "medication", status_words=False)
                if more is None or not r.take(r"\s*\)"):
                    return None
                second = _negate(_medication_rule(
                    more, "medication {} " + f"within {_amount(longer.group(1))} {longer.group(2).lower()}s"))
            if items and r.ended():
                window = f"within {_amount(since.group(1))} {since.group(2).lower()}s"
                draft = _negate(_medication_rule(items, "medication {} " + window))
                return _join(draft, second, "and") if second else draft
            return None
        r = _Reader(s)
        if r.take(_DISCONTINUE_LEAD):
            items = _items(r, "medication", status_words=False)
            stop = r.take(_DISCONTINUE) if items else None
            if stop and r.ended():
                window = f"within {_amount(stop.group(1))} {stop.group(2).lower()}s"
                return _negate(_medication_rule(items, "medication {} " + window))
            return None
        r = _Reader(s)
        if not r.take(_NEGATION):
            return None
        s = s[r.pos:]
    for lead, template in ((_EVER, "medication {}"), (_CURRENT, "current medication {}")):
        r = _Reader(s)
        if r.take(lead) is None or r.pos == 0:
            continue
        items = _items(r, "medication", status_words=False)
        if not items:
            continue
        r.take(_TREATMENT_TAIL)
        if template.startswith("current"):
            r.take(_PERMITTED)
        if r.ended():
            draft = _medication_rule(items, template)
            return _negate(draft) if kind == "inclusion" else draft
    r = _Reader(s)
    r.take(_EXPOSED)
    items = _items(r, "medication", status_words=False)
    if items:
        r.take(_TREATMENT_TAIL)
        window = r.take(_WINDOW)
        if window and r.ended():
            draft = _medication_rule(items, "medication {} " + _window(window))
            return _negate(draft) if kind == "inclusion" else draft
    return None


# ---------------------------------------------------------------- procedures (issue 9, session 2)
_MAJOR = re.compile(r"\s*major\s+(?=surgery|surgical|operation)", re.I)
_MAJOR_QUESTION = "was the surgery on record major surgery as the protocol means it?"
# a named operation no code list here holds: any surgery in the window is unknown until a person says which it was
_NAMED_SURGERY = re.compile(r"\s*(?P<name>craniotom(?:y|ies)|laparotom(?:y|ies)|thoracotom(?:y|ies))", re.I)
_PROCEDURE_LEAD = re.compile(
    r"\s*(?:(?:any|has(?:\s+had)?(?:\s+an?)?|had(?:\s+an?)?|prior|previous|recent|treatment\s+with|"
    r"received|receipt\s+of)\s+)*", re.I)


def _procedure_test(entry: Entry, major: bool | str, window: str) -> tuple[str, dict]:
    name, declaration = entry.declaration()
    test = f"procedure {name}{f' {window}' if window else ''}"
    if major:
        # no code says "major" (or "craniotomy"): a surgery in the window is unknown until a person says
        question = _MAJOR_QUESTION if major is True else f"was the surgery on record a {major.lower()}?"
        test = f"({test} and review {_quote(question)})"
    return test, {name: declaration}


def draft_procedures(text: str, kind: str) -> Draft | None:
    """Procedures the lexicon names, in a window: "Major surgery within 4 weeks prior to the first dose",
    "At least 2 weeks must have elapsed from any prior surgery", "More than 4 weeks since prior radiotherapy",
    "No treatment with radiation therapy =< 28 days before study registration"."""
    if len(text) > _MAX_LINE:
        return None
    s = _prepare(text)
    lex = lexicon()
    r = _Reader(s)
    if kind == "inclusion":
        since = r.take(_SINCE)
        negated = since is None and r.take(_NEGATION) is not None
        if since is None and not negated:
            return None
    else:
        since = negated = None
    r.take(_PROCEDURE_LEAD)
    major = bool(r.take(_MAJOR))
    named = None if major else r.take(_NAMED_SURGERY)
    if named:
        major, entry = named.group("name"), lex.entries["surgery"]
    else:
        m = lex.match("procedure", r.s, r.pos)
        if m is None or len(m.entries) != 1:
            return None
        entry = m.entries[0]
        if major and entry.name != "surgery":
            return None
        r.pos = m.end
    if since:
        window = f"within {_amount(since.group(1))} {since.group(2).lower()}s"
    else:
        found = r.take(_WINDOW)
        if found is None:
            return None                 # "Prior surgery": ever? a procedure without a window is not drafted
        window = _window(found)
    if not r.ended():
        return None
    test, sets = _procedure_test(entry, major, window)
    if kind == "inclusion":
        rule = f"not {test}"
    else:
        rule = test[1:-1] if test.startswith("(") else test
    return Draft(rule, sets, "procedures")
