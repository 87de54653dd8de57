-- patient_recovery: neutrophil and platelet improvement (30 days) and recovery (90 days),
-- computed from the lab series (lab_daily, lab_runs; "consecutive days" are explained there).
--
-- Study definitions (published-results.md), thresholds from definitions `recovery`:
--   neutrophil_improvement_30d  ANC > 0.5 x10^9/L for MORE than 3 consecutive days after
--                               agranulocytosis (ANC < 0.5), all within days 0..30
--   platelet_improvement_30d    after falling below 20 x10^9/L, PLT stable > 20 for 7
--                               consecutive days without platelet transfusion, within days 0..30
--   neutrophil_recovery_90d     ANC back to >= anc_normal_low (2.0) within days 0..90
--   platelet_recovery_90d       PLT back to >= plt_normal_low (100) within days 0..90
-- "Back to normal": the first day whose daily minimum is >= the lower limit of normal after the
-- first day below it (for platelets, on a day no platelet transfusion of that day or the
-- recovery.plt_transfusion_effect_days (3) days before could explain: issue 17); a patient whose counts never fell below normal in the window has
-- recovered (true). A patient never agranulocytic (or never below 20) has no improvement
-- (false); see anc_agranulocytosis_30d / plt_below_trigger_30d to tell these apart.
-- Every flag is NULL when the patient has no count of that analyte in the window.
-- Follow-up (issue 16; patient_followup.settled_through_day): a flag that is not true is NULL (unknown), not false,
-- when the patient's last contact is before the window's last day and the patient did not die
-- before it: "not recovered by day 90" needs follow-up to day 90 (or a death without recovery).
--
-- Columns: center_id, patient_id,
--   anc_agranulocytosis_30d, neutrophil_improvement_30d, neutrophil_improvement_day,
--   neutrophil_recovery_90d, neutrophil_recovery_day,
--   plt_below_trigger_30d, platelet_improvement_30d, platelet_improvement_day,
--   platelet_recovery_90d, platelet_recovery_day, followup_ends_before_30d,
--   followup_ends_before_90d (true: alive, or not known dead, and last seen before that day)
--   (*_day: day index from the index date; for improvement, the first day of the qualifying run)
CREATE OR REPLACE VIEW patient_recovery AS
WITH window_30 AS (
    SELECT center_id, patient_id,
           bool_or(daily_min < def_recovery_anc_agranulocytosis_below())
               FILTER (WHERE analyte = 'ANC') AS anc_agranulocytosis,
           bool_or(daily_min < def_recovery_plt_trigger_below())
               FILTER (WHERE analyte = 'PLT') AS plt_below_trigger
    FROM lab_daily
    WHERE analyte IN ('ANC', 'PLT')
      AND day_index BETWEEN 0 AND def_recovery_window_improvement_days()
    GROUP BY center_id, patient_id
),
improved AS (
    SELECT center_id, patient_id,
           min(run_start) FILTER (WHERE criterion = 'anc_improvement') AS anc_day,
           min(run_start) FILTER (WHERE criterion = 'plt_improvement') AS plt_day
    FROM lab_runs
    WHERE meets AND criterion IN ('anc_improvement', 'plt_improvement')
    GROUP BY center_id, patient_id
),
window_90 AS (
    SELECT d.analyte, d.center_id, d.patient_id, d.day_index, d.daily_min,
           CASE d.analyte WHEN 'ANC' THEN def_recovery_anc_normal_low()
                          ELSE def_recovery_plt_normal_low() END AS normal_low
    FROM lab_daily d
    WHERE d.analyte IN ('ANC', 'PLT')
      AND d.day_index BETWEEN 0 AND def_recovery_window_recovery_days()
),
with_fall AS (
    SELECT w.*,
           min(CASE WHEN w.daily_min < w.normal_low THEN w.day_index END)
               OVER (PARTITION BY w.analyte, w.center_id, w.patient_id) AS first_below,
           -- Clause (issue 17): a platelet count the last transfusion could explain
           w.analyte = 'PLT' AND EXISTS (
               SELECT 1
               FROM transfusions t
               JOIN patient_index p ON p.center_id = t.center_id AND p.patient_id = t.patient_id
               WHERE t.center_id = w.center_id AND t.patient_id = w.patient_id
                 AND t.transfused_at IS NOT NULL
                 AND date_diff('day', p.index_date, CAST(t.transfused_at AS DATE))
                     BETWEEN w.day_index - def_recovery_plt_transfusion_effect_days() AND w.day_index
           ) AS explained
    FROM window_90 w
),
recovered AS (
    SELECT center_id, patient_id,
           count(*) FILTER (WHERE analyte = 'ANC') AS anc_days,
           count(*) FILTER (WHERE analyte = 'PLT') AS plt_days,
           min(day_index) FILTER (WHERE analyte = 'ANC' AND daily_min >= normal_low
                                  AND (first_below IS NULL OR day_index > first_below)) AS anc_day,
           min(day_index) FILTER (WHERE analyte = 'PLT' AND daily_min >= normal_low AND NOT explained
                                  AND (first_below IS NULL OR day_index > first_below)) AS plt_day
    FROM with_fall
    GROUP BY center_id, patient_id
),
flags AS (
    SELECT p.center_id,
           p.patient_id,
           w.anc_agranulocytosis AS anc_agranulocytosis_30d,
           CASE WHEN w.anc_agranulocytosis IS NOT NULL THEN i.anc_day IS NOT NULL END
               AS neutrophil_improvement_30d,
           i.anc_day AS neutrophil_improvement_day,
           CASE WHEN r.anc_days > 0 THEN r.anc_day IS NOT NULL END AS neutrophil_recovery_90d,
           r.anc_day AS neutrophil_recovery_day,
           w.plt_below_trigger AS plt_below_trigger_30d,
           CASE WHEN w.plt_below_trigger IS NOT NULL THEN i.plt_day IS NOT NULL END
               AS platelet_improvement_30d,
           i.plt_day AS platelet_improvement_day,
           CASE WHEN r.plt_days > 0 THEN r.plt_day IS NOT NULL END AS platelet_recovery_90d,
           r.plt_day AS platelet_recovery_day,
           -- the "no" of a window is known: followed to its last day, or dead before it
           -- (patient_followup.settled_through_day, issue 16)
           coalesce(f.settled_through_day >= def_recovery_window_improvement_days(), false) AS seen_30,
           coalesce(f.settled_through_day >= def_recovery_window_recovery_days(), false) AS seen_90
    FROM patient_index p
    LEFT JOIN window_30 w ON w.center_id = p.center_id AND w.patient_id = p.patient_id
    LEFT JOIN improved i ON i.center_id = p.center_id AND i.patient_id = p.patient_id
    LEFT JOIN recovered r ON r.center_id = p.center_id AND r.patient_id = p.patient_id
    LEFT JOIN patient_followup f ON f.center_id = p.center_id AND f.patient_id = p.patient_id
)
SELECT center_id,
       patient_id,
       CASE WHEN anc_agranulocytosis_30d OR seen_30 THEN anc_agranulocytosis_30d END
           AS anc_agranulocytosis_30d,
       CASE WHEN neutrophil_improvement_30d OR seen_30 THEN neutrophil_improvement_30d END
           AS neutrophil_improvement_30d,
       neutrophil_improvement_day,
       CASE WHEN neutrophil_recovery_90d OR seen_90 THEN neutrophil_recovery_90d END
           AS neutrophil_recovery_90d,
       neutrophil_recovery_day,
       CASE WHEN plt_below_trigger_30d OR seen_30 THEN plt_below_trigger_30d END
           AS plt_below_trigger_30d,
       CASE WHEN platelet_improvement_30d OR seen_30 THEN platelet_improvement_30d END
           AS platelet_improvement_30d,
       platelet_improvement_day,
       CASE WHEN platelet_recovery_90d OR seen_90 THEN platelet_recovery_90d END
           AS platelet_recovery_90d,
       platelet_recovery_day,
       NOT seen_30 AS followup_ends_before_30d,
       NOT seen_90 AS followup_ends_before_90d
FROM flags;
