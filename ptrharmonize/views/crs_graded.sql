-- crs_graded: every crs_assessments row with its CRS grade recomputed from the recorded signs
-- under Lee et al. 2014 and under ASTCT 2019 (Lee et al. 2019).
--
-- It reads only the relation named `crs_assessments`, so the validation engine can create it
-- over a submission (whose rows carry `_file`, `_row`) as well as over the store. Every column
-- of that relation is kept; three are added: signs_recorded, lee2014_grade, astct2019_grade.
-- Helper columns are prefixed `_g_` and removed at the end. Values are cast defensively
-- (TRY_CAST) so a submission still holding text is graded too.
--
-- signs_recorded: at least one sign column is filled (temperature, hypotension, vasopressors,
-- NE-equivalent dose, vasopressin, FiO2, O2 device, O2 flow, organ toxicity, transaminitis).
-- Without signs both grades are NULL (unknown), not 0.
--
-- Lee 2014 (Blood 2014;124:188, Table 2; high dose per Table 3). Highest grade met:
--   4  O2 device in crs.lee2014.ventilation_devices (ventilator)
--      or organ toxicity grade >= organ_toxicity_grade4 (4; transaminitis excluded)
--   3  FiO2 >= fio2_grade3_min_pct (40)
--      or multiple vasopressors: >= multiple_vasopressors_min (2) at once, vasopressin not
--         counted (multiple_excludes_vasopressin)
--      or high dose: NE-equivalent >= high_dose_ne_ug_min (20 ug/min), or vasopressin with
--         NE-equivalent >= vasopressin_plus_ne_ug_min (10 ug/min)
--      or organ toxicity grade >= organ_toxicity_grade3 (3)
--      or transaminitis grade >= transaminitis_grade4 (4)
--   2  hypotension, or any vasopressor (one, low dose), or supplemental O2 (FiO2 above
--      crs.room_air_fio2_pct (21), an O2 device other than 'none', or an O2 flow > 0),
--      or organ toxicity grade >= organ_toxicity_grade2 (2),
--      or transaminitis grade >= transaminitis_grade2 (2; grades 2-3)
--   1  temperature >= fever_min_c (38.0)
--   0  otherwise
--   (Lee 2014 does not require fever for grades 2-4.)
--
-- ASTCT 2019 (BBMT 2019;25:625). Grades 2-4 need fever: temperature >= fever_min_c (38.0), or
-- the temperature not recorded, or (fever_carried_forward) an earlier assessment day of the
-- same patient with fever: once CRS has been febrile, antipyretic/anti-cytokine treatment may
-- mask fever and grading is driven by hypotension and hypoxia (ASTCT footnote).
--   4  multiple vasopressors excluding vasopressin (>= multiple_vasopressors_min, 2)
--      or O2 device in grade4_o2_devices (cpap, bipap, ventilator: positive pressure)
--   3  one vasopressor, with or without vasopressin (vasopressin alone counts)
--      or O2 device in grade3_o2_devices (facemask, nonrebreather, venturi)
--      or nasal cannula (cannula_devices, or no device recorded) with flow
--         > low_flow_max_l_min (6 L/min); a cannula device in
--         cannula_high_flow_when_flow_unknown (high_flow) without a recorded flow
--   2  hypotension not requiring vasopressors, or any other supplemental O2
--      (low-flow cannula <= 6 L/min, FiO2 above room air)
--   1  temperature >= fever_min_c
--   0  otherwise (organ toxicity does not grade CRS under ASTCT)
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
           TRY_CAST(c.transaminitis_grade AS BIGINT) AS _g_transaminitis
    FROM crs_assessments c
),
signs AS (
    SELECT t.*,
           (_g_temp IS NOT NULL OR _g_hypotension IS NOT NULL OR _g_vasopressors IS NOT NULL
            OR _g_ne IS NOT NULL OR _g_vasopressin IS NOT NULL OR _g_fio2 IS NOT NULL
            OR _g_device IS NOT NULL OR _g_flow IS NOT NULL OR _g_organ IS NOT NULL
            OR _g_transaminitis IS NOT NULL) AS _g_signs,
           coalesce(_g_vasopressin, false) AS _g_vp,
           -- vasopressors other than vasopressin: the count minus vasopressin, at least one
           -- when an NE-equivalent dose is recorded
           greatest(
               coalesce(_g_vasopressors, 0) - CASE WHEN coalesce(_g_vasopressin, false) THEN 1 ELSE 0 END,
               CASE WHEN _g_ne > 0 THEN 1 ELSE 0 END,
               0
           ) AS _g_pressors_non_vp,
           (_g_fio2 > def_crs_room_air_fio2_pct()
            OR (_g_device IS NOT NULL AND _g_device <> 'none')
            OR _g_flow > 0) AS _g_oxygen,
           _g_temp >= def_astct2019_fever_min_c() AS _g_fever_astct,
           -- first febrile assessment day of the patient (ASTCT carry-forward)
           min(CASE WHEN _g_temp >= def_astct2019_fever_min_c() THEN _g_day END)
               OVER (PARTITION BY center_id, patient_id) AS _g_first_fever_day
    FROM typed t
),
criteria AS (
    SELECT s.*,
           _g_pressors_non_vp + CASE WHEN _g_vp THEN 1 ELSE 0 END AS _g_pressors_all,
           -- Lee 2014 counts "multiple vasopressors" without vasopressin by default
           CASE WHEN def_lee2014_multiple_excludes_vasopressin() THEN _g_pressors_non_vp
                ELSE _g_pressors_non_vp + CASE WHEN _g_vp THEN 1 ELSE 0 END
           END AS _g_lee_pressors,
           (coalesce(_g_fever_astct, false)
            OR _g_temp IS NULL
            OR (def_astct2019_fever_carried_forward() AND _g_first_fever_day < _g_day)
           ) AS _g_astct_fever_ok
    FROM signs s
),
graded AS (
    SELECT c.*,
           CASE
               WHEN NOT _g_signs THEN NULL
               WHEN list_contains(def_lee2014_ventilation_devices(), _g_device)
                    OR _g_organ >= def_lee2014_organ_toxicity_grade4()
                   THEN 4
               WHEN _g_fio2 >= def_lee2014_fio2_grade3_min_pct()
                    OR _g_lee_pressors >= def_lee2014_multiple_vasopressors_min()
                    OR _g_ne >= def_lee2014_high_dose_ne_ug_min()
                    OR (_g_vp AND _g_ne >= def_lee2014_vasopressin_plus_ne_ug_min())
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
           END AS lee2014_grade,
           CASE
               WHEN NOT _g_signs THEN NULL
               WHEN _g_astct_fever_ok
                    AND (_g_pressors_non_vp >= def_astct2019_multiple_vasopressors_min()
                         OR list_contains(def_astct2019_grade4_o2_devices(), _g_device))
                   THEN 4
               WHEN _g_astct_fever_ok
                    AND (_g_pressors_all >= 1
                         OR list_contains(def_astct2019_grade3_o2_devices(), _g_device)
                         OR ((_g_device IS NULL OR list_contains(def_astct2019_cannula_devices(), _g_device))
                             AND _g_flow > def_astct2019_low_flow_max_l_min())
                         OR (list_contains(def_astct2019_cannula_high_flow_when_flow_unknown(), _g_device)
                             AND _g_flow IS NULL))
                   THEN 3
               WHEN _g_astct_fever_ok
                    AND (coalesce(_g_hypotension, false) OR coalesce(_g_oxygen, false))
                   THEN 2
               WHEN coalesce(_g_fever_astct, false) THEN 1
               ELSE 0
           END AS astct2019_grade
    FROM criteria c
)
SELECT * EXCLUDE (
           _g_day, _g_temp, _g_hypotension, _g_vasopressors, _g_ne, _g_vasopressin, _g_fio2,
           _g_device, _g_flow, _g_organ, _g_transaminitis, _g_signs, _g_vp, _g_pressors_non_vp,
           _g_oxygen, _g_fever_astct, _g_first_fever_day, _g_pressors_all, _g_lee_pressors,
           _g_astct_fever_ok, lee2014_grade, astct2019_grade
       ),
       _g_signs AS signs_recorded,
       CAST(lee2014_grade AS BIGINT) AS lee2014_grade,
       CAST(astct2019_grade AS BIGINT) AS astct2019_grade
FROM graded;
