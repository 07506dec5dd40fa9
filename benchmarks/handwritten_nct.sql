-- A hand-written DuckDB query of trials/NCT00659217.crit over the NDJSON population (benchmarks/population.py):
-- the columnar limit `batch --engine duckdb` is measured against for that rule set. Written as an analyst
-- would write it, in the style of handwritten_bench.sql: read_ndjson with typed columns, value sets as code
-- tests (an ICD-10 or ATC code decides; a record coded only in SNOMED CT or RxNorm that no listed code matches
-- may be a descendant or a product, so it is unknown: no terminology here), the latest result in its window,
-- Kleene logic through SQL NULLs, `review` as NULL. Every criterion is computed, the ACR "at least 4 of 11"
-- included. It ignores corner cases the engine handles (partial dates that straddle a window, latest-result
-- ties, the written-precision rule, statuses beyond active/inactive), so a few decisions may differ: the
-- benchmark prints how many. Parameters: $path (the NDJSON file), $as_of (DATE).
WITH p AS MATERIALIZED (
  SELECT * FROM read_ndjson($path, columns = {
    id: 'VARCHAR', sex: 'VARCHAR', birth_date: 'VARCHAR',
    observations: 'STRUCT(code VARCHAR, value JSON, unit VARCHAR, date VARCHAR, reference_range STRUCT(low DOUBLE, high DOUBLE, unit VARCHAR))[]',
    conditions: 'STRUCT(code VARCHAR, codes VARCHAR[], status VARCHAR, onset VARCHAR, "end" VARCHAR)[]',
    medications: 'STRUCT(code VARCHAR, codes VARCHAR[], status VARCHAR, "start" VARCHAR, "end" VARCHAR, route VARCHAR, response VARCHAR)[]',
    procedures: 'STRUCT(code VARCHAR, codes VARCHAR[], date VARCHAR, result VARCHAR)[]',
    facts: 'JSON'})
),
obs AS (
  SELECT id, o.code, try_cast(o.value AS DOUBLE) AS v, lower(json_extract_string(o.value, '$')) AS t, o.unit,
         CASE WHEN length(o.date) = 4 THEN make_date(o.date::INT, 1, 1) WHEN length(o.date) = 7 THEN (o.date || '-01')::DATE
              ELSE try_cast(o.date[1:10] AS DATE) END AS lo,
         CASE WHEN length(o.date) = 4 THEN make_date(o.date::INT, 12, 31) WHEN length(o.date) = 7 THEN last_day((o.date || '-01')::DATE)
              ELSE try_cast(o.date[1:10] AS DATE) END AS hi,
         o.reference_range.high AS ref_high, coalesce(o.reference_range.unit, o.unit) AS ref_unit
  FROM (SELECT id, unnest(observations) AS o FROM p)
),
conv AS MATERIALIZED (
  SELECT id, lo, hi, t,
    CASE WHEN code IN ('LOINC:1742-6', 'LOINC:1743-4', 'LOINC:76625-3') THEN 'ALT'
         WHEN code IN ('LOINC:1920-8', 'LOINC:30239-8') THEN 'AST'
         WHEN code IN ('LOINC:777-3', 'LOINC:26515-7') THEN 'plt'
         WHEN code IN ('LOINC:6690-2', 'LOINC:26464-8') THEN 'wbc'
         WHEN code IN ('LOINC:731-0', 'LOINC:26474-7') THEN 'lymph'
         WHEN code IN ('LOINC:2889-4', 'LOINC:26474-7') THEN 'protein'
         WHEN code IN ('LOINC:5130-0', 'LOINC:11235-6') THEN 'dsdna'
         WHEN code IN ('LOINC:5048-4', 'LOINC:8061-4') THEN 'ana' END AS a,
    -- ALT/AST in U/L, counts in 10^9/L, proteinuria in g/d
    CASE WHEN unit IN ('/mm3', 'cells/mm3', '/uL') THEN v / 1000
         WHEN unit = 'ukat/L' THEN v * 60
         WHEN unit = 'mg/d' THEN v / 1000
         WHEN unit IN ('U/L', 'IU/L', '10^9/L', '10*3/uL', 'g/d', 'g/(24.h)') THEN v END AS x,
    CASE WHEN ref_unit = 'ukat/L' THEN ref_high * 60 WHEN ref_high > 0 THEN ref_high END AS uln
  FROM obs WHERE hi <= $as_of
),
labs AS (
  SELECT id,
    arg_max(x, hi) FILTER (a = 'ALT' AND lo >= $as_of - INTERVAL 3 MONTH) AS alt,
    arg_max(uln, hi) FILTER (a = 'ALT' AND lo >= $as_of - INTERVAL 3 MONTH) AS alt_uln,
    arg_max(x, hi) FILTER (a = 'AST' AND lo >= $as_of - INTERVAL 3 MONTH) AS ast,
    arg_max(uln, hi) FILTER (a = 'AST' AND lo >= $as_of - INTERVAL 3 MONTH) AS ast_uln,
    count(*) FILTER (a = 'wbc' AND x < 4) AS wbc_low, count(*) FILTER (a = 'wbc' AND x IS NULL) AS wbc_unknown,
    count(*) FILTER (a = 'lymph' AND x < 1.5) AS lymph_low, count(*) FILTER (a = 'lymph') AS lymph_n,
    count(*) FILTER (a = 'plt' AND x < 100) AS plt_low, count(*) FILTER (a = 'plt') AS plt_n,
    count(*) FILTER (a = 'protein' AND x > 0.5) AS protein_high, count(*) FILTER (a = 'protein') AS protein_n,
    count(*) FILTER (a = 'dsdna' AND t IN ('positive', 'reactive')) AS dsdna_pos, count(*) FILTER (a = 'dsdna') AS dsdna_n,
    count(*) FILTER (a = 'ana' AND t IN ('positive', 'reactive')) AS ana_pos, count(*) FILTER (a = 'ana') AS ana_n
  FROM conv GROUP BY id
),
-- one row per condition record: its codes, activity, onset; each value set as TRUE / FALSE / NULL (maybe)
cond AS (
  SELECT id, cs,
         -- active: by its status; with neither status nor end date it may be
         CASE WHEN lower(status) IN ('active', 'recurrence', 'relapse') THEN TRUE WHEN status IS NOT NULL THEN FALSE
              WHEN "end" IS NULL THEN NULL WHEN end_lo > $as_of THEN TRUE WHEN end_hi <= $as_of THEN FALSE END AS active,
         -- a record whose onset may fall after the as-of date may not exist yet
         CASE WHEN onset_hi > $as_of THEN NULL ELSE TRUE END AS sure,
         onset_lo, onset_hi,
         list_bool_or(list_transform(cs, lambda c: c[1:6] = 'ICD10:')) AS icd,
         list_bool_or(list_transform(cs, lambda c: c[1:7] = 'SNOMED:')) AS snomed
  FROM (SELECT *,
          CASE WHEN length(onset) = 4 THEN make_date(onset::INT, 1, 1) WHEN length(onset) = 7 THEN (onset || '-01')::DATE
               ELSE try_cast(onset[1:10] AS DATE) END AS onset_lo,
          CASE WHEN length(onset) = 4 THEN make_date(onset::INT, 12, 31) WHEN length(onset) = 7 THEN last_day((onset || '-01')::DATE)
               ELSE try_cast(onset[1:10] AS DATE) END AS onset_hi,
          CASE WHEN length("end") = 4 THEN make_date("end"::INT, 1, 1) WHEN length("end") = 7 THEN ("end" || '-01')::DATE
               ELSE try_cast("end"[1:10] AS DATE) END AS end_lo,
          CASE WHEN length("end") = 4 THEN make_date("end"::INT, 12, 31) WHEN length("end") = 7 THEN last_day(("end" || '-01')::DATE)
               ELSE try_cast("end"[1:10] AS DATE) END AS end_hi
        FROM (SELECT id, c.status, c.onset, c."end", list_prepend(c.code, coalesce(c.codes, [])) AS cs
              FROM (SELECT id, unnest(conditions) AS c FROM p)))
  WHERE coalesce(lower(status), '') NOT IN ('entered-in-error', 'refuted') AND NOT coalesce(onset_lo > $as_of, FALSE)
),
cond_sets AS (
  SELECT id, active, onset_lo, onset_hi,
    -- member(matches, has SNOMED members): an ICD-10 code decides; a SNOMED-only record may be a descendant
    CASE WHEN list_bool_or(list_transform(cs, lambda c: c = 'LOCAL:ACR-MALAR-RASH')) THEN TRUE ELSE FALSE END AS malar,
    list_bool_or(list_transform(cs, lambda c: replace(c, '.', '')[1:10] = 'ICD10:L930' OR c = 'LOCAL:ACR-DISCOID-RASH')) AS discoid,
    list_bool_or(list_transform(cs, lambda c: c[1:9] = 'ICD10:L56' OR c = 'LOCAL:ACR-PHOTOSENSITIVITY')) AS photo,
    list_bool_or(list_transform(cs, lambda c: replace(c, '.', '')[1:10] IN ('ICD10:K120', 'ICD10:K121') OR c = 'LOCAL:ACR-ORAL-ULCERS')) AS ulcers,
    CASE WHEN list_bool_or(list_transform(cs, lambda c: replace(c, '.', '')[1:10] IN ('ICD10:M130', 'ICD10:M064') OR c = 'SNOMED:3723001')) THEN sure
         WHEN icd THEN FALSE WHEN snomed THEN NULL ELSE FALSE END AS arthritis,
    CASE WHEN list_bool_or(list_transform(cs, lambda c: replace(c, '.', '')[1:10] = 'ICD10:R091' OR c[1:9] IN ('ICD10:I30', 'ICD10:I32') OR c = 'SNOMED:3238004')) THEN sure
         WHEN icd THEN FALSE WHEN snomed THEN NULL ELSE FALSE END AS serositis,
    list_bool_or(list_transform(cs, lambda c: c = 'LOCAL:ACR-CELLULAR-CASTS')) AS casts,
    CASE WHEN list_bool_or(list_transform(cs, lambda c: replace(c, '.', '')[1:11] IN ('ICD10:M3214', 'ICD10:M3215') OR c = 'SNOMED:68815009')) THEN sure
         WHEN icd THEN FALSE WHEN snomed THEN NULL ELSE FALSE END AS nephritis,
    CASE WHEN list_bool_or(list_transform(cs, lambda c: c[1:9] IN ('ICD10:R56', 'ICD10:G40') OR replace(c, '.', '')[1:10] = 'ICD10:F062'
                                              OR c IN ('SNOMED:91175000', 'SNOMED:128613002', 'SNOMED:69322001'))) THEN sure
         WHEN icd THEN FALSE WHEN snomed THEN NULL ELSE FALSE END AS neuro,
    CASE WHEN list_bool_or(list_transform(cs, lambda c: c[1:9] = 'ICD10:D59' OR c = 'SNOMED:61261009')) THEN sure
         WHEN icd THEN FALSE WHEN snomed THEN NULL ELSE FALSE END AS hemolytic,
    CASE WHEN list_bool_or(list_transform(cs, lambda c: (c[1:6] = 'ICD10:' AND c[7:9] BETWEEN 'C00' AND 'C96') OR c[1:9] = 'ICD10:Z85'
                                              OR c = 'SNOMED:363346000')) THEN sure
         WHEN icd THEN FALSE WHEN snomed THEN NULL ELSE FALSE END AS malignancy,
    CASE WHEN list_bool_or(list_transform(cs, lambda c: (c[1:6] = 'ICD10:' AND c[7:9] BETWEEN 'A00' AND 'B99')
                                              OR c IN ('SNOMED:40733004', 'SNOMED:66071002', 'SNOMED:50711007', 'SNOMED:56717001'))) THEN sure
         WHEN icd THEN FALSE WHEN snomed THEN NULL ELSE FALSE END AS infection,
    CASE WHEN list_bool_or(list_transform(cs, lambda c: c[1:9] IN ('ICD10:B20', 'ICD10:Z21') OR c = 'SNOMED:86406008')) THEN sure
         WHEN icd THEN FALSE WHEN snomed THEN NULL ELSE FALSE END AS hiv,
    CASE WHEN list_bool_or(list_transform(cs, lambda c: (c[1:6] = 'ICD10:' AND (c[7:9] BETWEEN 'I20' AND 'I25' OR c[7:9] BETWEEN 'I34' AND 'I38'
                                              OR c[7:9] IN ('I42', 'I46', 'I47', 'I48', 'I49', 'I63'))) OR c IN ('SNOMED:56265001', 'SNOMED:230690007'))) THEN sure
         WHEN icd THEN FALSE WHEN snomed THEN NULL ELSE FALSE END AS cvd,
    CASE WHEN list_bool_or(list_transform(cs, lambda c: c[1:9] = 'ICD10:I50' OR c = 'SNOMED:84114007')) THEN sure
         WHEN icd THEN FALSE WHEN snomed THEN NULL ELSE FALSE END AS hf,
    CASE WHEN list_bool_or(list_transform(cs, lambda c: replace(c, '.', '')[1:10] = 'ICD10:I200' OR c[1:9] IN ('ICD10:I21', 'ICD10:I22', 'ICD10:I24')
                                              OR c IN ('SNOMED:394659003', 'SNOMED:22298006'))) THEN sure
         WHEN icd THEN FALSE WHEN snomed THEN NULL ELSE FALSE END AS acs,
    CASE WHEN list_bool_or(list_transform(cs, lambda c: (c[1:6] = 'ICD10:' AND (c[7:9] BETWEEN 'F01' AND 'F03' OR c[7:9] BETWEEN 'F20' AND 'F39'
                                              OR c[7:9] BETWEEN 'F70' AND 'F79')) OR c = 'SNOMED:74732009')) THEN sure
         WHEN icd THEN FALSE WHEN snomed THEN NULL ELSE FALSE END AS psych
  FROM cond
),
-- Kleene "any record": TRUE when one is, NULL when one may be, else FALSE (3 = true, 2 = maybe, 1 = false)
conds AS (
  SELECT id,
    max(CASE WHEN malar THEN 3 ELSE 1 END) AS malar, max(CASE WHEN discoid THEN 3 ELSE 1 END) AS discoid,
    max(CASE WHEN photo THEN 3 ELSE 1 END) AS photo, max(CASE WHEN ulcers THEN 3 ELSE 1 END) AS ulcers,
    max(coalesce(arthritis::INT * 2 + 1, 2)) AS arthritis, max(coalesce(serositis::INT * 2 + 1, 2)) AS serositis,
    max(CASE WHEN casts THEN 3 ELSE 1 END) AS casts, max(coalesce(nephritis::INT * 2 + 1, 2)) AS nephritis,
    max(coalesce(neuro::INT * 2 + 1, 2)) AS neuro, max(coalesce(hemolytic::INT * 2 + 1, 2)) AS hemolytic,
    max(coalesce(malignancy::INT * 2 + 1, 2)) AS malignancy,
    max(CASE WHEN infection IS FALSE OR active IS FALSE THEN 1 WHEN active IS NULL THEN 2 ELSE coalesce(infection::INT * 2 + 1, 2) END) AS infection,
    max(coalesce(hiv::INT * 2 + 1, 2)) AS hiv,
    max(CASE WHEN cvd IS FALSE OR active IS FALSE THEN 1 WHEN active IS NULL THEN 2 ELSE coalesce(cvd::INT * 2 + 1, 2) END) AS cvd,
    max(CASE WHEN hf IS FALSE OR active IS FALSE THEN 1 WHEN active IS NULL THEN 2 ELSE coalesce(hf::INT * 2 + 1, 2) END) AS hf,
    -- an event in the 6 months: its onset there; an onset not recorded, or a partial one across the edge, may be
    max(CASE WHEN acs IS FALSE THEN 1
             WHEN onset_lo IS NULL THEN 2
             WHEN onset_hi < $as_of - INTERVAL 6 MONTH OR onset_lo > $as_of THEN 1
             WHEN onset_lo >= $as_of - INTERVAL 6 MONTH AND onset_hi <= $as_of THEN coalesce(acs::INT * 2 + 1, 2)
             ELSE 2 END) AS acs,
    max(CASE WHEN psych IS FALSE OR active IS FALSE THEN 1 WHEN active IS NULL THEN 2 ELSE coalesce(psych::INT * 2 + 1, 2) END) AS psych
  FROM cond_sets GROUP BY id
),
meds AS (
  SELECT id,
    -- cyclophosphamide IV, failed (I4); antituberculosis drugs, active (E3): an ATC code decides, RxNorm only may be
    max(CASE WHEN list_bool_or(list_transform(cs, lambda c: c IN ('RXNORM:3002', 'ATC:L01AA01')))
                  THEN CASE WHEN route = 'IV' AND response = 'failed' THEN 3 ELSE 1 END
             WHEN list_bool_or(list_transform(cs, lambda c: c[1:4] = 'ATC:')) THEN 1
             WHEN list_bool_or(list_transform(cs, lambda c: c[1:7] = 'RXNORM:')) AND route = 'IV' AND response = 'failed' THEN 2
             ELSE 1 END) AS cyclo,
    max(CASE WHEN NOT (coalesce(lower(status), 'active') = 'active' AND coalesce(try_cast("end"[1:10] AS DATE) > $as_of, TRUE)) THEN 1
             WHEN list_bool_or(list_transform(cs, lambda c: c[1:8] = 'ATC:J04A' OR c IN ('RXNORM:6038', 'RXNORM:9384', 'RXNORM:8987', 'RXNORM:4110'))) THEN 3
             WHEN list_bool_or(list_transform(cs, lambda c: c[1:4] = 'ATC:')) THEN 1
             WHEN list_bool_or(list_transform(cs, lambda c: c[1:7] = 'RXNORM:')) THEN 2
             ELSE 1 END) AS tb
  FROM (SELECT id, m.status, m."end", m.route, m.response, list_prepend(m.code, coalesce(m.codes, [])) AS cs
        FROM (SELECT id, unnest(medications) AS m FROM p))
  GROUP BY id
),
procs AS (
  SELECT id, max(CASE WHEN (pr.code = 'CPT:50200' OR pr.code = 'SNOMED:287862008')
                      THEN CASE WHEN regexp_matches(coalesce(pr.result, ''), 'class\s*(III|IV|3|4)\b') THEN 3 ELSE 1 END
                      WHEN pr.code LIKE 'SNOMED:%' THEN CASE WHEN regexp_matches(coalesce(pr.result, ''), 'class\s*(III|IV|3|4)\b') THEN 2 ELSE 1 END
                      ELSE 1 END) AS biopsy
  FROM (SELECT id, unnest(procedures) AS pr FROM p) GROUP BY id
),
c AS (
  SELECT p.id, p.sex,
    -- age in whole years for the earliest and the latest possible birth day
    CASE WHEN length(p.birth_date) = 4 THEN make_date(p.birth_date::INT, 1, 1) WHEN length(p.birth_date) = 7 THEN (p.birth_date || '-01')::DATE
         ELSE try_cast(p.birth_date AS DATE) END AS b_lo,
    CASE WHEN length(p.birth_date) = 4 THEN make_date(p.birth_date::INT, 12, 31) WHEN length(p.birth_date) = 7 THEN last_day((p.birth_date || '-01')::DATE)
         ELSE try_cast(p.birth_date AS DATE) END AS b_hi,
    p.conditions IS NOT NULL AS has_c, p.medications IS NOT NULL AS has_m, p.procedures IS NOT NULL AS has_p,
    p.observations IS NOT NULL AS has_o,
    TRY_CAST(json_extract(p.facts, '$.informed_consent_capable') AS BOOLEAN) AS capable,
    TRY_CAST(json_extract(p.facts, '$.anti_sm_positive') AS BOOLEAN) AS anti_sm,
    TRY_CAST(json_extract(p.facts, '$.antiphospholipid_positive') AS BOOLEAN) AS antiphospholipid,
    TRY_CAST(json_extract(p.facts, '$.psychiatric_illness_prevents_compliance') AS BOOLEAN) AS psych_prevents,
    TRY_CAST(json_extract(p.facts, '$.transaminase_rise_due_to_active_lupus') AS BOOLEAN) AS lupus_transaminases,
    TRY_CAST(json_extract(p.facts, '$.investigator_judges_treatment_not_tolerable') AS BOOLEAN) AS not_tolerable,
    l.*, k.*, m.*, pr.*
  FROM p LEFT JOIN labs l ON l.id = p.id LEFT JOIN conds k ON k.id = p.id LEFT JOIN meds m ON m.id = p.id
       LEFT JOIN procs pr ON pr.id = p.id
),
-- 3-valued record tests: a missing list is unknown
t AS (
  SELECT *,
    date_diff('year', b_hi, $as_of) - (strftime($as_of, '%m%d') < strftime(b_hi, '%m%d'))::INT AS age_lo,
    date_diff('year', b_lo, $as_of) - (strftime($as_of, '%m%d') < strftime(b_lo, '%m%d'))::INT AS age_hi,
    CASE WHEN NOT has_c THEN NULL ELSE coalesce(malar, 1) = 3 END AS c_malar,
    CASE WHEN NOT has_c THEN NULL ELSE coalesce(discoid, 1) = 3 END AS c_discoid,
    CASE WHEN NOT has_c THEN NULL ELSE coalesce(photo, 1) = 3 END AS c_photo,
    CASE WHEN NOT has_c THEN NULL ELSE coalesce(ulcers, 1) = 3 END AS c_ulcers,
    CASE WHEN NOT has_c OR arthritis = 2 THEN NULL ELSE coalesce(arthritis, 1) = 3 END AS c_arthritis,
    CASE WHEN NOT has_c OR serositis = 2 THEN NULL ELSE coalesce(serositis, 1) = 3 END AS c_serositis,
    CASE WHEN NOT has_c THEN NULL ELSE coalesce(casts, 1) = 3 END AS c_casts,
    CASE WHEN NOT has_c OR nephritis = 2 THEN NULL ELSE coalesce(nephritis, 1) = 3 END AS c_nephritis,
    CASE WHEN NOT has_c OR neuro = 2 THEN NULL ELSE coalesce(neuro, 1) = 3 END AS c_neuro,
    CASE WHEN NOT has_c OR hemolytic = 2 THEN NULL ELSE coalesce(hemolytic, 1) = 3 END AS c_hemolytic,
    CASE WHEN NOT has_c OR malignancy = 2 THEN NULL ELSE coalesce(malignancy, 1) = 3 END AS c_malignancy,
    CASE WHEN NOT has_c OR infection = 2 THEN NULL ELSE coalesce(infection, 1) = 3 END AS c_infection,
    CASE WHEN NOT has_c OR hiv = 2 THEN NULL ELSE coalesce(hiv, 1) = 3 END AS c_hiv,
    CASE WHEN NOT has_c OR cvd = 2 THEN NULL ELSE coalesce(cvd, 1) = 3 END AS c_cvd,
    CASE WHEN NOT has_c OR hf = 2 THEN NULL ELSE coalesce(hf, 1) = 3 END AS c_hf,
    CASE WHEN NOT has_c OR acs = 2 THEN NULL ELSE coalesce(acs, 1) = 3 END AS c_acs,
    CASE WHEN NOT has_c OR psych = 2 THEN NULL ELSE coalesce(psych, 1) = 3 END AS c_psych,
    CASE WHEN NOT has_m OR cyclo = 2 THEN NULL ELSE coalesce(cyclo, 1) = 3 END AS m_cyclo,
    CASE WHEN NOT has_m OR tb = 2 THEN NULL ELSE coalesce(tb, 1) = 3 END AS m_tb,
    CASE WHEN NOT has_p OR biopsy = 2 THEN NULL ELSE coalesce(biopsy, 1) = 3 END AS p_biopsy,
    -- `any X` / `on at least 2 occasions`: unknown with no result to read
    CASE WHEN coalesce(protein_high, 0) > 0 THEN TRUE WHEN coalesce(protein_n, 0) = 0 THEN NULL ELSE FALSE END AS o_protein,
    CASE WHEN coalesce(wbc_low, 0) >= 2 THEN TRUE WHEN NOT has_o OR coalesce(wbc_unknown, 0) > 0 OR coalesce(wbc_low, 0) = 1 THEN NULL ELSE FALSE END AS o_wbc,
    CASE WHEN coalesce(lymph_low, 0) >= 2 THEN TRUE WHEN coalesce(lymph_n, 0) = 0 OR lymph_low = 1 THEN NULL ELSE FALSE END AS o_lymph,
    CASE WHEN coalesce(plt_low, 0) > 0 THEN TRUE WHEN coalesce(plt_n, 0) = 0 THEN NULL ELSE FALSE END AS o_plt,
    CASE WHEN coalesce(dsdna_pos, 0) > 0 THEN TRUE WHEN coalesce(dsdna_n, 0) = 0 THEN NULL ELSE FALSE END AS o_dsdna,
    CASE WHEN coalesce(ana_pos, 0) > 0 THEN TRUE WHEN coalesce(ana_n, 0) = 0 THEN NULL ELSE FALSE END AS o_ana
  FROM c
),
acr AS (
  SELECT *, [c_malar, c_discoid, c_photo, c_ulcers, c_arthritis, c_serositis, o_protein OR c_casts OR c_nephritis, c_neuro,
             c_hemolytic OR o_wbc OR o_lymph OR o_plt, o_dsdna OR anti_sm OR antiphospholipid, o_ana] AS acr
  FROM t
),
v AS (
  SELECT id,
    CASE WHEN age_lo >= 18 AND age_hi <= 60 THEN TRUE WHEN age_hi < 18 OR age_lo > 60 THEN FALSE END AS AGE,
    CASE WHEN len(list_filter(acr, lambda x: x IS TRUE)) >= 4 THEN TRUE
         WHEN len(list_filter(acr, lambda x: x IS NOT FALSE)) < 4 THEN FALSE END AS I2,
    capable AS I3,
    -- applies if C: B (true when C is false; when C is unknown, true only if B is)
    CASE WHEN c_nephritis IS FALSE THEN TRUE WHEN c_nephritis THEN m_cyclo AND p_biopsy
         WHEN m_cyclo AND p_biopsy THEN TRUE END AS I4,
    c_malignancy AS E2,
    c_infection OR c_hiv OR m_tb AS E3,
    c_cvd OR c_hf OR c_acs AS E4,
    c_psych AND psych_prevents AS E5,  -- `review` when the fact is not recorded: NULL
    (alt > 2 * coalesce(alt_uln, CASE WHEN sex = 'female' THEN 35 ELSE 40 END) OR ast > 2 * coalesce(ast_uln, 40))
      AND NOT lupus_transaminases AS E6,
    not_tolerable AS E7
  FROM acr
)
SELECT id,
  CASE WHEN AGE IS FALSE OR I2 IS FALSE OR I3 IS FALSE OR I4 IS FALSE OR E2 OR E3 OR E4 OR E5 OR E6 OR E7 THEN 'ineligible'
       WHEN AGE AND I2 AND I3 AND I4 AND NOT E2 AND NOT E3 AND NOT E4 AND NOT E5 AND NOT E6 AND NOT E7 THEN 'eligible'
       ELSE 'undetermined' END AS decision
FROM v
