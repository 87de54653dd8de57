-- patient_missing: why a derived value of patient_summary is NULL, one row per patient and
-- variable that is NULL (long format; a known value has no row).
--
-- Three states (issue 16): `state` is 'not_collected' (the center does not collect the table or
-- column the value comes from: center_collects) or 'unknown' (collected, but not recorded or
-- not derivable for this patient); `reason` is a stable code an analysis reports when it
-- leaves the patient out ("excluded": {"<variable>: <reason>": n}).
--
-- Structural blanks are not missing: a chemotherapy patient's car_target, a living patient's
-- death_on, the onset of a PTR that did not happen are not variables here. Every row is a
-- patient with an index treatment (patient_index).
--
-- Columns: center_id, patient_id, variable, state, reason
CREATE OR REPLACE VIEW patient_missing AS
WITH s AS (
    SELECT s.*, k.*  EXCLUDE (center_id)
    FROM patient_summary s
    LEFT JOIN center_collects k ON k.center_id = s.center_id
),
patient_columns_collected AS (
    SELECT center_id, "column" AS c, bool_and(collected) AS collected
    FROM collection WHERE "table" = 'patients' AND "column" IS NOT NULL
    GROUP BY center_id, "column"
),
long AS (
    SELECT center_id, patient_id, 'ptr' AS variable,
           CASE WHEN ptr_not_assessable_reason LIKE '%not_collected' THEN 'not_collected' ELSE 'unknown' END AS state,
           coalesce(ptr_not_assessable_reason, 'not_assessable') AS reason
    FROM s WHERE ptr IS NULL
    UNION ALL
    SELECT center_id, patient_id, v.variable,
           CASE WHEN crs_not_assessable_reason = 'crs_not_collected' THEN 'not_collected' ELSE 'unknown' END,
           coalesce(crs_not_assessable_reason, 'unknown')
    FROM s, (VALUES ('crs_grade'), ('crs_grade_3plus')) v(variable)
    WHERE (v.variable = 'crs_grade' AND crs_grade IS NULL)
       OR (v.variable = 'crs_grade_3plus' AND crs_grade_3plus IS NULL)
    UNION ALL
    SELECT center_id, patient_id, v.variable,
           CASE WHEN bleeding_not_assessable_reason = 'bleeding_not_collected' THEN 'not_collected' ELSE 'unknown' END,
           coalesce(bleeding_not_assessable_reason, 'unknown')
    FROM s, (VALUES ('worst_bleeding_grade_30d'), ('bleeding_grade_3plus_30d')) v(variable)
    WHERE (v.variable = 'worst_bleeding_grade_30d' AND worst_bleeding_grade_30d IS NULL)
       OR (v.variable = 'bleeding_grade_3plus_30d' AND bleeding_grade_3plus_30d IS NULL)
    UNION ALL
    SELECT center_id, patient_id, 'event_type',
           CASE WHEN event_not_assessable_reason LIKE '%not_collected' THEN 'not_collected' ELSE 'unknown' END,
           coalesce(event_not_assessable_reason, 'unknown')
    FROM s WHERE event_type IS NULL
    UNION ALL
    SELECT center_id, patient_id, 'infection',
           CASE WHEN NOT infections THEN 'not_collected' ELSE 'unknown' END,
           CASE WHEN NOT infections THEN 'infections_not_collected'
                WHEN exposures_followup_ended THEN 'followup_ended_in_window' ELSE 'unknown' END
    FROM s WHERE infection IS NULL
    UNION ALL
    SELECT center_id, patient_id, v.variable,
           CASE WHEN NOT (medications AND medications__drug) THEN 'not_collected' ELSE 'unknown' END,
           CASE WHEN NOT (medications AND medications__drug) THEN 'medications_not_collected'
                WHEN exposures_followup_ended THEN 'followup_ended_in_window' ELSE 'unknown' END
    FROM s, (VALUES ('tocilizumab'), ('tocilizumab_doses'), ('corticosteroid')) v(variable)
    WHERE (v.variable = 'tocilizumab' AND tocilizumab IS NULL)
       OR (v.variable = 'tocilizumab_doses' AND tocilizumab_doses IS NULL)
       OR (v.variable = 'corticosteroid' AND corticosteroid IS NULL)
    UNION ALL
    SELECT center_id, patient_id, 'cr',
           CASE WHEN NOT (outcomes AND outcomes__response) THEN 'not_collected' ELSE 'unknown' END,
           CASE WHEN NOT outcomes THEN 'outcomes_not_collected'
                WHEN NOT outcomes__response THEN 'response_not_collected'
                ELSE 'response_unknown' END
    FROM s WHERE cr IS NULL
    UNION ALL
    SELECT center_id, patient_id, v.variable,
           CASE WHEN NOT labs THEN 'not_collected' ELSE 'unknown' END,
           CASE WHEN NOT labs THEN 'labs_not_collected'
                WHEN v.variable LIKE '%\_30d' ESCAPE '\' AND followup_ends_before_30d THEN 'followup_ended_in_window'
                WHEN v.variable LIKE '%\_90d' ESCAPE '\' AND followup_ends_before_90d THEN 'followup_ended_in_window'
                ELSE 'no_count_in_window' END
    FROM s, (VALUES ('neutrophil_improvement_30d'), ('neutrophil_recovery_90d'),
                    ('platelet_improvement_30d'), ('platelet_recovery_90d')) v(variable)
    WHERE (v.variable = 'neutrophil_improvement_30d' AND neutrophil_improvement_30d IS NULL)
       OR (v.variable = 'neutrophil_recovery_90d' AND neutrophil_recovery_90d IS NULL)
       OR (v.variable = 'platelet_improvement_30d' AND platelet_improvement_30d IS NULL)
       OR (v.variable = 'platelet_recovery_90d' AND platelet_recovery_90d IS NULL)
    UNION ALL
    SELECT center_id, patient_id, 'has_cytokines', 'not_collected', 'labs_not_collected'
    FROM s WHERE has_cytokines IS NULL
    UNION ALL
    SELECT center_id, patient_id, 'peak_temp_c',
           CASE WHEN NOT crs_assessments THEN 'not_collected' ELSE 'unknown' END,
           CASE WHEN NOT crs_assessments THEN 'crs_not_collected' ELSE 'temperature_unknown' END
    FROM s WHERE peak_temp_c IS NULL
    UNION ALL
    SELECT center_id, patient_id, v.variable,
           CASE WHEN NOT transfusions THEN 'not_collected'
                WHEN v.variable = 'plt_units_until_recovery' AND NOT transfusions__units_reported THEN 'not_collected'
                WHEN v.variable = 'plt_dose_e11_until_recovery' AND NOT transfusions__dose_e11 THEN 'not_collected'
                ELSE 'unknown' END,
           CASE WHEN NOT transfusions THEN 'transfusions_not_collected'
                WHEN v.variable = 'plt_units_until_recovery' AND NOT transfusions__units_reported THEN 'units_not_collected'
                WHEN v.variable = 'plt_dose_e11_until_recovery' AND NOT transfusions__dose_e11 THEN 'dose_not_collected'
                WHEN plt_followup_ended THEN 'followup_ended_in_window'
                WHEN v.variable = 'plt_units_until_recovery' THEN 'units_unknown'
                ELSE 'dose_unknown' END
    FROM s, (VALUES ('plt_units_until_recovery'), ('plt_dose_e11_until_recovery')) v(variable)
    WHERE (v.variable = 'plt_units_until_recovery' AND plt_units_until_recovery IS NULL)
       OR (v.variable = 'plt_dose_e11_until_recovery' AND plt_dose_e11_until_recovery IS NULL)
    UNION ALL
    -- Baseline values come from columns of `patients`: a column the center does not collect
    -- (absent, or declared `not_collected: [patients.<column>]`) is not_collected, a blank cell
    -- of a collected column is unknown (bsa_m2 needs both height_cm and weight_kg).
    SELECT s.center_id, s.patient_id, v.variable,
           CASE WHEN coalesce(c1.collected, true) AND coalesce(c2.collected, true)
                THEN 'unknown' ELSE 'not_collected' END,
           v.variable || CASE WHEN coalesce(c1.collected, true) AND coalesce(c2.collected, true)
                              THEN '_unknown' ELSE '_not_collected' END
    FROM s
    CROSS JOIN (VALUES ('age_years', 'age_years', NULL), ('sex', 'sex', NULL),
                       ('bsa_m2', 'height_cm', 'weight_kg'), ('bm_blast_pct', 'bm_blast_pct', NULL),
                       ('n_relapses', 'n_relapses', NULL), ('disease_status', 'disease_status', NULL),
                       ('prior_allo_hsct', 'prior_allo_hsct', NULL),
                       ('extramedullary', 'extramedullary', NULL)) v(variable, col1, col2)
    LEFT JOIN patient_columns_collected c1 ON c1.center_id = s.center_id AND c1.c = v.col1
    LEFT JOIN patient_columns_collected c2 ON c2.center_id = s.center_id AND c2.c = v.col2
    WHERE (v.variable = 'age_years' AND age_years IS NULL)
       OR (v.variable = 'sex' AND (sex IS NULL OR sex = 'U'))
       OR (v.variable = 'bsa_m2' AND bsa_m2 IS NULL)
       OR (v.variable = 'bm_blast_pct' AND bm_blast_pct IS NULL)
       OR (v.variable = 'n_relapses' AND n_relapses IS NULL)
       OR (v.variable = 'disease_status' AND disease_status IS NULL)
       OR (v.variable = 'prior_allo_hsct' AND prior_allo_hsct IS NULL)
       OR (v.variable = 'extramedullary' AND extramedullary IS NULL)
)
SELECT center_id, patient_id, variable, state, reason FROM long;
