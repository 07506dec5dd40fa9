"""Reading the HTML report back as a browser would see its structure (stdlib html.parser), and the
inputs the report tests share: the bundled samples and a rule set and patient full of markup."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NCT = ROOT / "trials" / "NCT00659217.crit"
SAMPLES = ROOT / "patient_samples"
TERMINOLOGY = ROOT / "trials" / "terminology"
AS_OF = "2026-11-25"

# every way a text could try to become markup, script or template source
HOSTILE = ('<script>alert(1)</script> "><img src=x onerror=alert(2)> {{ 7*7 }} {% if true %}T{% endif %} '
           "</style><marquee>moving</marquee> ' onmouseover='alert(3)")
HOSTILE_RULES = (
    'trial "HOSTILE-1"\n'
    f'title {json.dumps(HOSTILE)}\n'
    f'inclusion I1 {json.dumps("I1 " + HOSTILE)} = age >= 18 years and fact {"consent"}\n'
    f'exclusion E1 {json.dumps("E1 " + HOSTILE)} = review {json.dumps("R " + HOSTILE)}\n'
    f'exclusion E2 {json.dumps("E2 " + HOSTILE)} = ALT > 2 x ULN within 3 months\n'
)
HOSTILE_PATIENT = {
    "version": 1, "id": "P " + HOSTILE, "name": "N " + HOSTILE, "mrn": "M " + HOSTILE, "birth_date": "1980-01-01", "sex": "female",
    "observations": [{"code": "LOINC:1742-6", "value": 95, "unit": "U/L", "date": "2026-11-01",
                      "reference_range": {"low": 7, "high": 40, "unit": "U/L"}}],
}
# a file name is patient text too: no "/" but every other character of HOSTILE's kind
HOSTILE_FILE = '<img src=x onerror=alert(9)> {{ 7*7 }} <style>x.json'


class Element:
    def __init__(self, tag: str, attrs: dict, parent: "Element | None"):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element] = []
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        """All text inside, children included, whitespace collapsed."""
        return " ".join("".join(self._texts()).split())

    def _texts(self):
        yield from self.parts

    def find_all(self, tag: str | None = None, **attrs) -> list["Element"]:
        found = []
        stack = list(reversed(self.children))
        while stack:
            e = stack.pop()
            wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
            if (tag is None or e.tag == tag) and all(
                    (e.attrs.get(k) == v if v is not True else k in e.attrs) or
                    (k == "class" and v is not True and v in (e.attrs.get("class") or "").split())
                    for k, v in wanted.items()):
                found.append(e)
            stack.extend(reversed(e.children))
        return found

    def find(self, tag: str | None = None, **attrs) -> "Element":
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag} {attrs}>"
        return found[0]


_VOID = {"meta", "br", "img", "input", "link", "hr", "source", "area", "base", "col", "embed", "wbr"}


class Document(HTMLParser):
    """The element tree of a page; every element keeps its own text and its descendants' text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.current = self.root
        self.all: list[Element] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        element = Element(tag, dict(attrs), self.current)
        self.current.children.append(element)
        self.all.append(element)
        if tag not in _VOID:
            self.current = element

    def handle_startendtag(self, tag, attrs):
        element = Element(tag, dict(attrs), self.current)
        self.current.children.append(element)
        self.all.append(element)

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        node = self.current
        while node is not None:  # text belongs to every enclosing element
            node.parts.append(data)
            node = node.parent

    def find_all(self, tag=None, **attrs):
        return self.root.find_all(tag, **attrs)

    def find(self, tag=None, **attrs):
        return self.root.find(tag, **attrs)

    def bars(self, chart: str) -> list[tuple[str, int]]:
        """(data-key, data-count) of each bar of a chart, top to bottom."""
        svg = self.find("svg", data_chart=chart)
        return [(g.attrs["data-key"], int(g.attrs["data-count"])) for g in svg.find_all("g", **{"class": "bar"})]

    def worklist(self) -> list[Element]:
        return self.find("table", **{"class": "worklist"}).find_all("tr", data_decision=True)

    def patient_page(self, display_contains: str) -> Element:
        for section in self.find_all("section", **{"class": "patient-page"}):
            if display_contains in section.find("h2").text:
                return section
        raise AssertionError(f"no patient page for {display_contains}")
