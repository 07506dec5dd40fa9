-- A hand-written DuckDB query of benchmarks/bench_rules.crit over the NDJSON population
-- (benchmarks/population.py): the columnar limit `batch --engine duckdb` is measured against.
-- Written the way an analyst would write it by hand: read_ndjson with typed columns, units converted
-- with CASE on the spellings the population uses, the latest result of each analyte in its window,
-- Kleene logic through SQL NULLs. It ignores corner cases the engine handles (the written-precision
-- rule, latest results whose partial dates overlap, eGFR/BMI derived from other results, comparators,
-- RxNorm products without a terminology), so its decisions differ on a few patients: the benchmark
-- prints how many. Parameters: $path (the NDJSON file), $as_of (DATE).
WITH p AS MATERIALIZED (
  SELECT * FROM read_ndjson($path, columns = {
    id: 'VARCHAR', sex: 'VARCHAR', birth_date: 'VARCHAR',
    observations: 'STRUCT(code VARCHAR, value JSON, unit VARCHAR, date VARCHAR, reference_range STRUCT(low DOUBLE, high DOUBLE, unit VARCHAR))[]',
    conditions: 'STRUCT(code VARCHAR, codes VARCHAR[], status VARCHAR, onset VARCHAR, "end" VARCHAR)[]',
    medications: 'STRUCT(code VARCHAR, codes VARCHAR[], status VARCHAR, "start" VARCHAR, "end" VARCHAR, route VARCHAR)[]',
    procedures: 'STRUCT(code VARCHAR, codes VARCHAR[], date VARCHAR)[]',
    facts: 'JSON'})
),
-- a partial date as its first and last day
obs AS (
  SELECT id, o.code, try_cast(o.value AS DOUBLE) AS v, o.unit,
         CASE WHEN length(o.date) = 4 THEN make_date(o.date::INT, 1, 1) WHEN length(o.date) = 7 THEN (o.date || '-01')::DATE
              ELSE o.date[1:10]::DATE END AS lo,
         CASE WHEN length(o.date) = 4 THEN make_date(o.date::INT, 12, 31) WHEN length(o.date) = 7 THEN last_day((o.date || '-01')::DATE)
              ELSE o.date[1:10]::DATE END AS hi,
         o.reference_range.high AS ref_high, coalesce(o.reference_range.unit, o.unit) AS ref_unit
  FROM (SELECT id, unnest(observations) AS o FROM p)
),
conv AS MATERIALIZED (
  SELECT id, lo, hi,
    CASE WHEN code IN ('LOINC:1742-6', 'LOINC:1743-4', 'LOINC:76625-3') THEN 'ALT'
         WHEN code IN ('LOINC:1920-8', 'LOINC:30239-8') THEN 'AST'
         WHEN code IN ('LOINC:1975-2', 'LOINC:14631-6') THEN 'bili'
         WHEN code IN ('LOINC:2160-0', 'LOINC:38483-4') THEN 'creat'
         WHEN code IN ('LOINC:777-3', 'LOINC:26515-7') THEN 'plt'
         WHEN code IN ('LOINC:6690-2', 'LOINC:26464-8') THEN 'wbc'
         WHEN code IN ('LOINC:751-8', 'LOINC:26499-4') THEN 'anc'
         WHEN code = 'LOINC:718-7' THEN 'hgb'
         WHEN code IN ('LOINC:4548-4', 'LOINC:17856-6') THEN 'a1c'
         WHEN code IN ('LOINC:33914-3', 'LOINC:62238-1', 'LOINC:98979-8') THEN 'egfr'
         WHEN code = 'LOINC:39156-5' THEN 'bmi'
         WHEN code = 'LOINC:8480-6' THEN 'sbp' END AS a,
    CASE WHEN unit IN ('umol/L') AND code IN ('LOINC:2160-0', 'LOINC:38483-4') THEN v / 88.4016
         WHEN unit IN ('umol/L') THEN v / 17.104
         WHEN unit IN ('/mm3', 'cells/mm3') THEN v / 1000
         WHEN unit = 'g/L' THEN v / 10
         WHEN unit = 'mmol/mol' THEN 0.09148 * v + 2.152
         WHEN unit = 'ukat/L' THEN v * 60
         WHEN unit IN ('U/L', 'IU/L', 'mg/dL', '10^9/L', '10*3/uL', 'g/dL', '%', 'mL/min/1.73m2', 'mL/min/{1.73_m2}',
                       'kg/m2', 'mmHg', 'mm[Hg]') THEN v END AS x,
    CASE WHEN ref_unit = 'umol/L' AND code IN ('LOINC:2160-0', 'LOINC:38483-4') THEN ref_high / 88.4016
         WHEN ref_unit = 'umol/L' THEN ref_high / 17.104
         WHEN ref_unit = 'ukat/L' THEN ref_high * 60
         WHEN ref_high > 0 THEN ref_high END AS uln
  FROM obs WHERE hi <= $as_of
),
-- the latest result of an analyte in a window: (analyte, months) pairs the criteria read
latest AS (
  SELECT id, a, m, arg_max(x, hi) AS x, arg_max(uln, hi) AS uln
  FROM conv, (SELECT unnest([3, 6, 12]) AS m)
  WHERE a IS NOT NULL AND lo >= $as_of - to_months(m)
  GROUP BY ALL
),
labs AS (
  SELECT id,
    max(x) FILTER (a = 'a1c' AND m = 3) AS a1c3, max(x) FILTER (a = 'a1c' AND m = 12) AS a1c,
    max(x) FILTER (a = 'creat' AND m = 12) AS creat, max(uln) FILTER (a = 'creat' AND m = 12) AS creat_uln,
    max(x) FILTER (a = 'egfr' AND m = 12) AS egfr, max(x) FILTER (a = 'plt' AND m = 6) AS plt,
    max(x) FILTER (a = 'anc' AND m = 12) AS anc, max(x) FILTER (a = 'hgb' AND m = 12) AS hgb,
    max(x) FILTER (a = 'ALT' AND m = 12) AS alt, max(uln) FILTER (a = 'ALT' AND m = 12) AS alt_uln,
    max(x) FILTER (a = 'AST' AND m = 12) AS ast, max(uln) FILTER (a = 'AST' AND m = 12) AS ast_uln,
    max(x) FILTER (a = 'bili' AND m = 12) AS bili, max(uln) FILTER (a = 'bili' AND m = 12) AS bili_uln,
    max(x) FILTER (a = 'bmi' AND m = 12) AS bmi
  FROM latest GROUP BY id
),
counts AS (
  SELECT id,
    count(*) FILTER (a = 'sbp' AND lo >= $as_of - INTERVAL 6 MONTH AND x >= 160) AS sbp_high,
    count(*) FILTER (a = 'wbc' AND lo >= $as_of - INTERVAL 12 MONTH AND x < 3) AS wbc_low,
    count(*) FILTER (a = 'egfr' AND lo >= $as_of - INTERVAL 12 MONTH AND x < 30) AS egfr_low
  FROM conv GROUP BY id
),
recs AS (
  SELECT id,
    bool_or(list_bool_or(list_transform(cs, lambda c: c[1:9] = 'ICD10:E11' OR c = 'SNOMED:44054006'))) AS t2d,
    bool_or(list_bool_or(list_transform(cs, lambda c: c[1:9] = 'ICD10:E10' OR c = 'SNOMED:46635009'))) AS t1d,
    bool_or(list_bool_or(list_transform(cs, lambda c: (c[1:6] = 'ICD10:' AND c[7:9] BETWEEN 'C00' AND 'C96')
        OR c[1:9] = 'ICD10:D45' OR c IN ('SNOMED:363346000', 'SNOMED:254637007')))
        AND (status IS NULL OR lower(status) IN ('active', 'recurrence', 'relapse')
             OR coalesce(try_cast(left("end", 4) AS INT), 9999) >= year($as_of) - 5)) AS malignancy,
    bool_or(list_bool_or(list_transform(cs, lambda c: c[1:9] = 'ICD10:I50' OR replace(c, '.', '') = 'ICD10:I110'
        OR c = 'SNOMED:84114007')) AND (status IS NULL OR lower(status) IN ('active', 'recurrence', 'relapse'))) AS hf,
    bool_or(list_bool_or(list_transform(cs, lambda c: replace(c, '.', '')[1:10] = 'ICD10:I200' OR c[1:9] IN ('ICD10:I21', 'ICD10:I22')
        OR c IN ('SNOMED:394659003', 'SNOMED:22298006'))) AND try_cast(onset[1:10] AS DATE) >= $as_of - INTERVAL 6 MONTH) AS acs,
    bool_or(list_bool_or(list_transform(cs, lambda c: replace(c, '.', '')[1:10] = 'ICD10:E804' OR c = 'SNOMED:27503000'))) AS gilbert
  FROM (SELECT id, c.status, c.onset, c."end", list_prepend(c.code, coalesce(c.codes, [])) AS cs FROM (SELECT id, unnest(conditions) AS c FROM p))
  GROUP BY id
),
meds AS (
  SELECT id,
    bool_or(list_bool_or(list_transform(cs, lambda c: c[1:8] = 'ATC:A10A' OR c = 'RXNORM:5856'))
        AND coalesce(try_cast("end"[1:10] AS DATE), $as_of) >= $as_of - INTERVAL 3 MONTH) AS insulin,
    bool_or(list_bool_or(list_transform(cs, lambda c: c[1:9] IN ('ATC:B01AA', 'ATC:B01AF') OR c IN ('RXNORM:11289', 'RXNORM:1364430')))
        AND lower(route) = 'oral' AND (status IS NULL OR lower(status) = 'active')) AS anticoag
  FROM (SELECT id, m.status, m."end", m.route, list_prepend(m.code, coalesce(m.codes, [])) AS cs FROM (SELECT id, unnest(medications) AS m FROM p))
  GROUP BY id
),
procs AS (
  SELECT id, bool_or(pr.code IN ('CPT:33533', 'CPT:92928', 'SNOMED:232717009')
                     AND try_cast(pr.date[1:10] AS DATE) >= $as_of - INTERVAL 6 MONTH) AS revasc
  FROM (SELECT id, unnest(procedures) AS pr FROM p) GROUP BY id
),
c AS (
  SELECT p.id,
    CASE WHEN p.birth_date IS NULL THEN NULL
         ELSE date_diff('year', (p.birth_date || CASE length(p.birth_date) WHEN 4 THEN '-07-01' WHEN 7 THEN '-15' ELSE '' END)::DATE, $as_of) END AS age,
    p.sex, p.conditions IS NOT NULL AS has_c, p.medications IS NOT NULL AS has_m, p.procedures IS NOT NULL AS has_p,
    json_extract(p.facts, '$.informed_consent')::BOOLEAN AS consent, json_extract(p.facts, '$.pregnant')::BOOLEAN AS pregnant,
    json_extract(p.facts, '$.smoker')::BOOLEAN AS smoker, json_extract(p.facts, '$.ecog')::DOUBLE AS ecog,
    json_extract(p.facts, '$.malignancy_curatively_treated')::BOOLEAN AS cured,
    l.*, k.*, r.*, m.*, pr.*
  FROM p LEFT JOIN labs l ON l.id = p.id LEFT JOIN counts k ON k.id = p.id LEFT JOIN recs r ON r.id = p.id
       LEFT JOIN meds m ON m.id = p.id LEFT JOIN procs pr ON pr.id = p.id
),
v AS (
  SELECT id,
    age BETWEEN 18 AND 75 AS I1,
    CASE WHEN has_c THEN coalesce(t2d, FALSE) AND NOT coalesce(t1d, FALSE) END AS I2,
    a1c3 BETWEEN 7.00044 AND 10.4767 AS I3,
    creat <= 1.5 OR creat <= 1.2 * coalesce(creat_uln, CASE sex WHEN 'female' THEN 90 / 88.4016 WHEN 'male' THEN 110 / 88.4016 ELSE 1.2 END)
      OR egfr >= 45 AS I4,
    plt >= 100 AS I5,
    anc >= 1.5 AND hgb >= 9 AS I6,
    consent AS I7,
    CASE WHEN sex = 'female' AND age < 50 THEN pregnant = FALSE WHEN sex IS NULL OR age IS NULL THEN NULL ELSE TRUE END AS I8,
    CASE WHEN has_c THEN coalesce(malignancy, FALSE) END AND NOT coalesce(cured, FALSE) AS E1,
    alt > 2.5 * coalesce(alt_uln, 56) OR ast > 2.5 * coalesce(ast_uln, 40) AS E2,
    CASE WHEN has_c AND coalesce(gilbert, FALSE) THEN bili > 3 * coalesce(bili_uln, 20.5 / 17.104)
         WHEN has_c THEN bili > 1.5 * coalesce(bili_uln, 20.5 / 17.104) END AS E3,
    CASE WHEN has_c THEN coalesce(hf, FALSE) OR coalesce(acs, FALSE) END AS E4,
    coalesce(sbp_high, 0) >= 2 AS E5,
    bmi >= 40 AS E6,
    CASE WHEN has_m THEN coalesce(insulin, FALSE) END AS E7,
    ((bmi >= 35)::INT + (a1c >= 9.5)::INT + (coalesce(sbp_high, 0) >= 2)::INT + smoker::INT + (coalesce(egfr_low, 0) > 0)::INT) >= 2 AS E8,
    coalesce(wbc_low, 0) >= 2 AS E9,
    CASE WHEN has_m THEN coalesce(anticoag, FALSE) END AS E10,
    CASE WHEN has_p THEN coalesce(revasc, FALSE) END AS E11,
    ecog > 1 AS E12
  FROM c
)
SELECT id,
  CASE WHEN I1 IS FALSE OR I2 IS FALSE OR I3 IS FALSE OR I4 IS FALSE OR I5 IS FALSE OR I6 IS FALSE OR I7 IS FALSE
            OR I8 IS FALSE OR E1 OR E2 OR E3 OR E4 OR E5 OR E6 OR E7 OR E8 OR E9 OR E10 OR E11 OR E12 THEN 'ineligible'
       WHEN (I1 AND I2 AND I3 AND I4 AND I5 AND I6 AND I7 AND I8 AND NOT E1 AND NOT E2 AND NOT E3 AND NOT E4 AND NOT E5
             AND NOT E6 AND NOT E7 AND NOT E8 AND NOT E9 AND NOT E10 AND NOT E11 AND NOT E12) THEN 'eligible'
       ELSE 'undetermined' END AS decision
FROM v
