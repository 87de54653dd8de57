-- crs_graded: every crs_assessments row with its CRS grade recomputed from the recorded signs
-- under Lee et al. 2014 and under ASTCT 2019 (Lee et al. 2019), and the grade analysed.
--
-- It reads the relation named `crs_assessments` (the store table, or a submission's rows with
-- `_file`, `_row`) and `crs_fever_masking` (crs_masking.sql). Every column of crs_assessments
-- is kept; added: signs_recorded, fio2_for_grading, fio2_source, fever_masked,
-- lee2014_high_dose_undetermined, lee2014_grade, astct2019_grade, reported_above_signs,
-- crs_grade. Helper columns are prefixed `_g_` and removed at the end. Values are cast
-- defensively (TRY_CAST) so a submission still holding text is graded too.
--
-- A PARTLY RECORDED DAY: each grade is the worst grade the RECORDED signs prove. A missing sign
-- proves nothing (a missing temperature is not fever). Without any sign both grades are NULL.
-- The grade analysed, crs_grade (Lee 2014, the study's scale), is the greater of the Lee 2014
-- grade from signs and the grade reported on lee2014: never lower than the center's own grade.
-- reported_above_signs flags a reported grade (lee2014 or astct2019) above the grade its
-- scale's signs prove (the rule crs_assessments.reported_grade_consistent warns).
--
-- Lee 2014 (Blood 2014;124:188, Table 2; high dose per Table 3; keys crs.lee2014). Highest met:
--   4  'Requirement for ventilator support': O2 device in ventilation_devices (bipap,
--      ventilator); 'Grade 4 organ toxicity (excluding transaminitis)'
--   3  'Oxygen requirement >= 40%': fio2_for_grading >= fio2_grade3_min_pct (recorded FiO2,
--         else the O2 device table crs.o2_fio2_equivalence)
--      'multiple vasopressors': >= multiple_vasopressors_min at once (vasopressin not counted,
--         multiple_excludes_vasopressin)
--      'high-dose' (Table 3): one pressor at NE-equivalent >= the highest monotherapy
--         threshold as NE-equivalent (20, any agent); combination NE-equivalent >=
--         high_dose_ne_ug_min (20); vasopressin + NE-equivalent >= vasopressin_plus_ne_ug_min (10)
--      'Grade 3 organ toxicity or grade 4 transaminitis'
--   2  'Oxygen requirement < 40%' (any supplemental O2), 'hypotension responsive to fluids or
--      low dose of one vasopressor', 'Grade 2 organ toxicity' (transaminitis 2-3 included)
--   1  fever: temperature >= fever_min_c (38.0)
--   0  otherwise. Lee 2014 does not require fever for grades 2-4.
--   lee2014_high_dose_undetermined: one pressor (no vasopressin) at an NE-equivalent that is
--   high dose for some agents only (>= 5, dopamine 10 ug/kg/min; < 20): CDM v1 has no agent.
--
-- ASTCT 2019 (BBMT 2019;25:625; keys crs.astct2019). Every grade needs fever, temperature >=
-- fever_min_c (38.0), except on days where fever_masked: a fever-masking course
-- (crs_fever_masking) started on or after a febrile assessment day of the patient, from its
-- start + fever_masking_from_day (0) on; grading is then driven by hypotension and hypoxia.
--   4  multiple vasopressors excluding vasopressin (>= multiple_vasopressors_min, 2);
--      positive pressure: O2 device in grade4_o2_devices (cpap, bipap, ventilator)
--   3  a vasopressor with or without vasopressin (vasopressin alone counts); facemask,
--      nonrebreather, venturi (grade3_o2_devices); nasal cannula (cannula_devices, or no device
--      recorded) at > low_flow_max_l_min (6 L/min); a device in
--      cannula_high_flow_when_flow_unknown (high_flow) without a recorded flow
--   2  hypotension not requiring vasopressors; any other supplemental O2 (low-flow cannula
--      <= 6 L/min, FiO2 above room air)
--   1  fever (an actual one: a masked fever without hypotension or hypoxia is 0)
--   0  otherwise. Organ toxicity does not grade CRS under ASTCT.
CREATE OR REPLACE VIEW crs_graded AS
WITH typed AS (
    SELECT c.*,
           TRY_CAST(c.assessed_on AS DATE) AS _g_day,
           TRY_CAST(c.max_temp_c AS DOUBLE) AS _g_temp,
           TRY_CAST(c.hypotension AS BOOLEAN) AS _g_hypotension,
           TRY_CAST(c.vasopressors AS BIGINT) AS _g_vasopressors,
           TRY_CAST(c.ne_equiv_ug_min AS DOUBLE) AS _g_ne,
           TRY_CAST(c.vasopressin AS BOOLEAN) AS _g_vasopressin,
           TRY_CAST(c.fio2_pct AS DOUBLE) AS _g_fio2,
           CAST(c.o2_device AS VARCHAR) AS _g_device,
           TRY_CAST(c.o2_flow_l_min AS DOUBLE) AS _g_flow,
           TRY_CAST(c.organ_toxicity_grade AS BIGINT) AS _g_organ,
           TRY_CAST(c.transaminitis_grade AS BIGINT) AS _g_transaminitis,
           TRY_CAST(c.reported_grade AS BIGINT) AS _g_reported,
           CAST(c.reported_scale AS VARCHAR) AS _g_scale
    FROM crs_assessments c
),
-- Fever masking (ASTCT footnote): the first day from which a course started after CRS (a
-- febrile assessment day on or before its start) lifts the fever requirement.
masking AS (
    SELECT m.center_id, m.patient_id,
           min(m.started_on + CAST(def_astct2019_fever_masking_from_day() AS INTEGER)) AS _g_masked_from
    FROM crs_fever_masking m
    WHERE EXISTS (
        SELECT 1 FROM typed f
        WHERE CAST(f.center_id AS VARCHAR) = m.center_id
          AND CAST(f.patient_id AS VARCHAR) = m.patient_id
          AND f._g_temp >= def_astct2019_fever_min_c()
          AND f._g_day <= m.started_on
    )
    GROUP BY m.center_id, m.patient_id
),
-- Signs: what was recorded, and the vasopressors counted as the criteria count them.
signs AS (
    SELECT t.*,
           (_g_temp IS NOT NULL OR _g_hypotension IS NOT NULL OR _g_vasopressors IS NOT NULL
            OR _g_ne IS NOT NULL OR _g_vasopressin IS NOT NULL OR _g_fio2 IS NOT NULL
            OR _g_device IS NOT NULL OR _g_flow IS NOT NULL OR _g_organ IS NOT NULL
            OR _g_transaminitis IS NOT NULL) AS _g_signs,
           coalesce(_g_vasopressin, false) AS _g_vp,
           -- vasopressors other than vasopressin: the count minus vasopressin, at least one
           -- when an NE-equivalent dose is recorded (vasopressin has no NE-equivalent)
           greatest(
               coalesce(_g_vasopressors, 0) - CASE WHEN coalesce(_g_vasopressin, false) THEN 1 ELSE 0 END,
               CASE WHEN _g_ne > 0 THEN 1 ELSE 0 END,
               0
           ) AS _g_pressors_non_vp,
           (_g_fio2 > def_crs_room_air_fio2_pct()
            OR (_g_device IS NOT NULL AND _g_device <> 'none')
            OR _g_flow > 0) AS _g_oxygen,
           _g_temp >= def_astct2019_fever_min_c() AS _g_fever_astct,
           coalesce(_g_day >= k._g_masked_from, false) AS _g_masked
    FROM typed t
    LEFT JOIN masking k
        ON k.center_id = CAST(t.center_id AS VARCHAR) AND k.patient_id = CAST(t.patient_id AS VARCHAR)
),
-- O2 device -> FiO2 (crs.o2_fio2_equivalence) when FiO2 is not recorded.
oxygen AS (
    SELECT s.*,
           CASE
               WHEN _g_fio2 IS NOT NULL THEN _g_fio2
               WHEN list_contains(def_crs_o2eq_cannula_devices(), _g_device) AND _g_flow IS NOT NULL
                   THEN least(def_crs_o2eq_max_pct(), def_crs_o2eq_cannula_base_pct() + def_crs_o2eq_cannula_pct_per_l_min() * _g_flow)
               WHEN list_contains(def_crs_o2eq_high_flow_devices(), _g_device)
                   THEN least(def_crs_o2eq_max_pct(), def_crs_o2eq_cannula_base_pct()
                                     + def_crs_o2eq_cannula_pct_per_l_min() * def_crs_o2eq_high_flow_min_l_min())
               WHEN _g_device = 'facemask' THEN def_crs_o2eq_facemask_pct()
               WHEN _g_device = 'nonrebreather' THEN def_crs_o2eq_nonrebreather_pct()
           END AS _g_fio2_used,
           CASE
               WHEN _g_fio2 IS NOT NULL THEN 'recorded'
               WHEN (list_contains(def_crs_o2eq_cannula_devices(), _g_device) AND _g_flow IS NOT NULL)
                    OR list_contains(def_crs_o2eq_high_flow_devices(), _g_device)
                    OR _g_device IN ('facemask', 'nonrebreather')
                   THEN 'o2_device_table'
           END AS _g_fio2_source
    FROM signs s
),
-- Lee 2014 Table 3: which vasopressor days are high dose.
vasopressors AS (
    SELECT o.*,
           _g_pressors_non_vp + CASE WHEN _g_vp THEN 1 ELSE 0 END AS _g_pressors_all,
           CASE WHEN def_lee2014_multiple_excludes_vasopressin() THEN _g_pressors_non_vp
                ELSE _g_pressors_non_vp + CASE WHEN _g_vp THEN 1 ELSE 0 END
           END AS _g_lee_pressors,
           (_g_ne >= def_lee2014_high_dose_mono_ne_all()
            OR (_g_pressors_non_vp >= def_lee2014_multiple_vasopressors_min() AND _g_ne >= def_lee2014_high_dose_ne_ug_min())
            OR (_g_vp AND _g_ne >= def_lee2014_vasopressin_plus_ne_ug_min())) AS _g_lee_high_dose,
           (_g_pressors_non_vp = 1 AND NOT _g_vp
            AND _g_ne >= def_lee2014_high_dose_mono_ne_any()
            AND _g_ne < def_lee2014_high_dose_mono_ne_all()) AS _g_lee_undetermined
    FROM oxygen o
),
lee AS (
    SELECT v.*,
           CASE
               WHEN NOT _g_signs THEN NULL
               WHEN list_contains(def_lee2014_ventilation_devices(), _g_device)
                    OR _g_organ >= def_lee2014_organ_toxicity_grade4()
                   THEN 4
               WHEN _g_fio2_used >= def_lee2014_fio2_grade3_min_pct()
                    OR _g_lee_pressors >= def_lee2014_multiple_vasopressors_min()
                    OR coalesce(_g_lee_high_dose, false)
                    OR _g_organ >= def_lee2014_organ_toxicity_grade3()
                    OR _g_transaminitis >= def_lee2014_transaminitis_grade4()
                   THEN 3
               WHEN coalesce(_g_hypotension, false)
                    OR _g_pressors_all >= 1
                    OR coalesce(_g_oxygen, false)
                    OR _g_organ >= def_lee2014_organ_toxicity_grade2()
                    OR _g_transaminitis >= def_lee2014_transaminitis_grade2()
                   THEN 2
               WHEN _g_temp >= def_lee2014_fever_min_c() THEN 1
               ELSE 0
           END AS _g_lee_grade
    FROM vasopressors v
),
astct AS (
    SELECT l.*,
           (coalesce(_g_fever_astct, false) OR _g_masked) AS _g_astct_fever_ok,
           CASE
               WHEN NOT _g_signs THEN NULL
               WHEN NOT (coalesce(_g_fever_astct, false) OR _g_masked) THEN 0
               WHEN _g_pressors_non_vp >= def_astct2019_multiple_vasopressors_min()
                    OR list_contains(def_astct2019_grade4_o2_devices(), _g_device)
                   THEN 4
               WHEN _g_pressors_all >= 1
                    OR list_contains(def_astct2019_grade3_o2_devices(), _g_device)
                    OR ((_g_device IS NULL OR list_contains(def_astct2019_cannula_devices(), _g_device))
                        AND _g_flow > def_astct2019_low_flow_max_l_min())
                    OR (list_contains(def_astct2019_cannula_high_flow_when_flow_unknown(), _g_device)
                        AND _g_flow IS NULL)
                   THEN 3
               WHEN coalesce(_g_hypotension, false) OR coalesce(_g_oxygen, false) THEN 2
               WHEN coalesce(_g_fever_astct, false) THEN 1
               ELSE 0
           END AS _g_astct_grade
    FROM lee l
),
-- The grade analysed, and a reported grade above what the signs prove.
analysed AS (
    SELECT a.*,
           coalesce(
               _g_reported > CASE _g_scale WHEN 'lee2014' THEN _g_lee_grade
                                           WHEN 'astct2019' THEN _g_astct_grade END,
               false) AS _g_reported_above,
           CASE
               WHEN _g_scale = 'lee2014' AND _g_reported IS NOT NULL
                   THEN greatest(coalesce(_g_lee_grade, _g_reported), _g_reported)
               ELSE _g_lee_grade
           END AS _g_crs_grade
    FROM astct a
)
SELECT * EXCLUDE (
           _g_day, _g_temp, _g_hypotension, _g_vasopressors, _g_ne, _g_vasopressin, _g_fio2,
           _g_device, _g_flow, _g_organ, _g_transaminitis, _g_reported, _g_scale, _g_signs, _g_vp,
           _g_pressors_non_vp, _g_oxygen, _g_fever_astct, _g_masked, _g_fio2_used,
           _g_fio2_source, _g_pressors_all, _g_lee_pressors, _g_lee_high_dose,
           _g_lee_undetermined, _g_lee_grade, _g_astct_fever_ok, _g_astct_grade,
           _g_reported_above, _g_crs_grade
       ),
       _g_signs AS signs_recorded,
       _g_fio2_used AS fio2_for_grading,
       _g_fio2_source AS fio2_source,
       _g_masked AS fever_masked,
       coalesce(_g_lee_undetermined, false) AS lee2014_high_dose_undetermined,
       CAST(_g_lee_grade AS BIGINT) AS lee2014_grade,
       CAST(_g_astct_grade AS BIGINT) AS astct2019_grade,
       _g_reported_above AS reported_above_signs,
       CAST(_g_crs_grade AS BIGINT) AS crs_grade
FROM analysed;
