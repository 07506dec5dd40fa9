"""Windows anchored at the end of a record or at a lab result:
`condition X within 12 weeks after the end of procedure radiotherapy`,
`procedure transfusion within 7 days before platelets >= 75 x 10^9/L`.

As-of date 2026-11-25 throughout; every verdict on both engines (helpers.one).
"""
import pytest

from screening import SourceError

from helpers import obs, one, patient, trial

HEADER = '''valueset radiotherapy "radiotherapy" = SNOMED:108290001
valueset recurrence "tumour recurrence" = SNOMED:25173007
valueset transfusion "platelet transfusion" = SNOMED:12719002
valueset chemo "chemotherapy" = ATC:L01
valueset infection "infection" = ICD10:A49.9
'''
# NCT02142803: "12 weeks from the completion of radiation for recurrent GBM unless there is
# surgical diagnosis of recurrence": a recurrence within 12 weeks after the end of radiotherapy
END = trial(HEADER + 'exclusion E1 "Recurrence within 12 weeks of completing radiation" = '
            'condition recurrence within 12 weeks after the end of procedure radiotherapy\n')
AFTER_END = trial(HEADER + 'inclusion I1 "Progressed since completion of radiotherapy" = '
                  'condition recurrence after the end of procedure radiotherapy\n')
MED_END = trial(HEADER + 'exclusion E1 "Infection within 4 weeks after the end of chemotherapy" = '
                'condition infection within 4 weeks after the end of medication chemo\n')
# NCT02329847: "Platelets >=75 x 109cells/L without transfusion support within 7 days prior to test"
LAB = trial(HEADER + 'exclusion E1 "Transfusion within 7 days before the platelet count" = '
            'procedure transfusion within 7 days before platelets >= 75 x 10^9/L\n')


def _rt(start="2026-06-01", end="2026-07-15"):
    return {"code": "SNOMED:108290001", "date": start, "end": end}


def _recurrence(onset):
    return {"code": "SNOMED:25173007", "onset": onset}


# ---------------------------------------------------------------- the end of a record
@pytest.mark.parametrize("onset, value", [
    ("2026-08-01", True),  # 2.5 weeks after the end
    ("2026-10-20", False),  # 14 weeks after the end
    ("2026-06-20", False),  # during radiotherapy: before its end
    ("2026-07-15", True),  # on the day it ended (the window includes the anchor's day)
    ("2026-10", None),  # October: 11 to 15 weeks after, across the limit
])
def test_within_n_after_the_end(onset, value):
    assert one(END, patient(conditions=[_recurrence(onset)], procedures=[_rt()])).value is value


@pytest.mark.parametrize("end, onset, value", [
    ("2026-07", "2026-08-01", True),  # after every day of July, and within 12 weeks of each
    ("2026-07", "2026-07-20", None),  # before or after the end, depending on the day in July
    ("2026-07", "2026-10-10", None),  # 10 to 14 weeks after a July end
    ("2026-07", "2026-06-30", False),  # before every day of July
])
def test_a_partial_end_date_stays_honest(end, onset, value):
    p = patient(conditions=[_recurrence(onset)], procedures=[_rt("2026-06-01", end)])
    assert one(END, p).value is value


def test_a_procedure_without_an_end_ends_on_its_date():
    p = patient(conditions=[_recurrence("2026-08-01")], procedures=[{"code": "SNOMED:108290001", "date": "2026-07-15"}])
    c = one(END, p)
    assert c.value is True
    assert c.evidence[0].detail == ("condition SNOMED:25173007 (from 2026-08-01) is within 12 weeks after the end of "
                                    "procedure SNOMED:108290001 (date 2026-07-15)")


def test_the_evidence_shows_the_end():
    c = one(END, patient(conditions=[_recurrence("2026-08-01")], procedures=[_rt()]))
    assert c.evidence[0].detail.endswith("(date 2026-06-01) ended 2026-07-15")


def test_after_the_end():
    assert one(AFTER_END, patient(conditions=[_recurrence("2026-09-01")], procedures=[_rt()])).value is True
    # progression during radiotherapy is after its start, not after its end
    assert one(AFTER_END, patient(conditions=[_recurrence("2026-07-01")], procedures=[_rt()])).value is False


@pytest.mark.parametrize("medication, value, missing", [
    ({"start": "2026-01-01", "end": "2026-10-01"}, True, []),
    ({"start": "2026-01-01", "status": "active"}, False, []),  # still taken: it has not ended
    ({"start": "2026-01-01", "status": "completed"}, None,  # ended, but when is not recorded
     ["condition ICD10:A49.9 within 4 weeks after the end of medication ATC:L01XA01: anchor medication ATC:L01XA01: "
      "end date of the anchor not recorded (status completed)"]),
    ({"start": "2026-01-01"}, None,
     ["condition ICD10:A49.9 within 4 weeks after the end of medication ATC:L01XA01: anchor medication ATC:L01XA01: "
      "status and end date of the anchor not recorded (it may still be going on)"]),
    ({"start": "2026-01-01", "end": "2026-12-20"}, False, []),  # ends after the as-of date
])
def test_the_end_of_a_medication(medication, value, missing):
    p = patient(conditions=[{"code": "ICD10:A49.9", "onset": "2026-10-10"}],
                medications=[{"code": "ATC:L01XA01", **medication}])
    c = one(MED_END, p)
    assert (c.value, c.missing) == (value, missing)


def test_a_defined_name_as_the_end_anchor():
    t = trial(HEADER + 'define rt = procedure radiotherapy\n'
              'exclusion E1 "x" = condition recurrence within 12 weeks after the end of rt\n')
    assert one(t, patient(conditions=[_recurrence("2026-08-01")], procedures=[_rt()])).value is True


# ---------------------------------------------------------------- a lab result
def _platelets(value, day):
    return obs("LOINC:777-3", value, "10*9/L", day)


@pytest.mark.parametrize("observations, value", [
    ([_platelets(90, "2026-11-20")], True),  # transfusion on 11-15, count on 11-20: 5 days before
    ([_platelets(90, "2026-11-30")], False),  # a count after the as-of date is not looked at
    ([_platelets(60, "2026-11-20")], False),  # the count does not meet the comparison: no anchor
    ([_platelets(90, "2026-12-01"), _platelets(90, "2026-10-01")], False),  # 45 days apart
    ([_platelets(90, "2026-11")], None),  # November: the window's days are not known
])
def test_a_lab_result_anchors_the_window(observations, value):
    p = patient(procedures=[{"code": "SNOMED:12719002", "date": "2026-11-15"}], observations=observations)
    assert one(LAB, p).value is value


def test_a_lab_anchor_without_results_is_unknown():
    p = patient(procedures=[{"code": "SNOMED:12719002", "date": "2026-11-15"}], observations=[])
    c = one(LAB, p)
    assert (c.value, c.missing) == (None, ["platelets result (needed as the anchor)"])
    c = one(LAB, patient(procedures=[{"code": "SNOMED:12719002", "date": "2026-11-15"}]))
    assert (c.value, c.missing) == (None, ["observations (not provided, needed as the anchor)"])


def test_the_lab_anchor_is_named_with_its_value():
    p = patient(procedures=[{"code": "SNOMED:12719002", "date": "2026-11-15"}],
                observations=[_platelets(90, "2026-11-20")])
    assert one(LAB, p).evidence[0].detail == ("procedure SNOMED:12719002 (date 2026-11-15) is within 7 days before "
                                               "platelets 90 10*9/L on 2026-11-20")


def test_a_lab_result_anchors_another_lab():
    t = trial(HEADER + 'exclusion E1 "x" = ANC < 1000/mm3 within 7 days after platelets < 50 x 10^9/L\n')
    p = patient(observations=[_platelets(40, "2026-10-01"), obs("LOINC:751-8", 0.5, "10*9/L", "2026-10-03")])
    assert one(t, p).value is True
    p = patient(observations=[_platelets(40, "2026-10-01"), obs("LOINC:751-8", 2.5, "10*9/L", "2026-10-05")])
    assert one(t, p).value is False
    # no ANC result in the week after: unknown, as for any lab test (a result is never assumed absent)
    p = patient(observations=[_platelets(40, "2026-10-01"), obs("LOINC:751-8", 0.5, "10*9/L", "2026-10-20")])
    c = one(t, p)
    assert c.value is None and c.missing == ["ANC within 7 days after platelets result of 2026-10-01: no ANC result "
                                             "from 2026-10-01 to 2026-10-08"]


@pytest.mark.parametrize("rule, message", [
    ("procedure transfusion within 7 days before unknown_lab >= 75 x 10^9/L", "unknown analyte"),
    ("procedure transfusion within 7 days before platelets >= 75 mg/dL", "incompatible"),
    ("condition recurrence within 12 weeks after the end of radiotherapy", "is a value set"),
])
def test_anchor_errors_are_positioned(rule, message):
    with pytest.raises(SourceError) as info:
        trial(HEADER + f'exclusion E1 "x" = {rule}\n')
    assert message in str(info.value)


def test_the_documented_example_compiles():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "language.md").read_text()
    section = text[text.index("**At a lab result.**"):]
    trial(re.search(r"```\n(.*?)```", section, re.S).group(1))


def test_missing_items_of_lab_anchors_ask_for_the_right_thing():
    p = patient(procedures=[{"code": "SNOMED:12719002", "date": "2026-11-15"}], observations=[])
    (item,) = one(LAB, p).missing_items
    assert (item.kind, item.code, item.name) == ("lab", "LOINC:777-3", "platelets")
    t = trial(HEADER + 'exclusion E1 "x" = ANC < 1000/mm3 within 7 days after platelets < 50 x 10^9/L\n')
    p = patient(observations=[_platelets(40, "2026-10-01"), obs("LOINC:751-8", 0.5, "10*9/L", "2026-10-20")])
    (item,) = one(t, p).missing_items
    assert (item.kind, item.code) == ("lab", "LOINC:751-8")
    assert item.question == "ANC result within 7 days after platelets result of 2026-10-01"
