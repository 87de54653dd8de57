-- patient_platelet_dose: platelet units and dose transfused until the count first stays
-- >= 20 x10^9/L (the study's Figure 3A).
--
-- The end point is the first day of the first lab_runs 'plt_stays' run that reaches
-- recovery.plt_stays_days (7) days with a daily minimum >= plt_dose_until_stays_above (20);
-- by default the run must begin after the count first fell below plt_trigger_below
-- (plt_stays_after_fall), so a patient who enters the window above 20 and then falls is
-- counted until the count comes back. Counted: transfusions started from the index date
-- (day 0) up to the day BEFORE that run begins (on a run day the count is already >= 20).
-- When the count never stays >= 20 within days 0..plt_dose_window_days (90), every
-- transfusion in that window counts.
--
-- plt_units_missing / plt_dose_missing count the transfusions whose units / dose were not
-- recorded. A patient with no transfusion has 0 and 0 -- at a center that collects
-- transfusions. Three states (issue 16): a sum over a transfusion of unknown units (dose) is
-- unknown, so plt_units_until_recovery (plt_dose_e11_until_recovery) is NULL when any counted
-- transfusion lacks it, and both are NULL where the center does not collect transfusions or
-- that column. Follow-up (issue 16, patient_followup.settled_through_day): a patient whose count never stayed
-- >= 20 and who was last seen alive before day plt_dose_window_days (90) has the count, units
-- and dose "until recovery" NULL (only a lower bound is known), plt_stays_reached NULL, and
-- plt_followup_ended true; a death before that day settles it (every transfusion counted).
--
-- Columns: center_id, patient_id, plt_stays_reached (NULL when no PLT count in the window),
--   plt_stays_from_day, plt_transfusions_until_recovery, plt_units_until_recovery,
--   plt_dose_e11_until_recovery, plt_units_missing, plt_dose_missing, plt_followup_ended
CREATE OR REPLACE VIEW patient_platelet_dose AS
WITH stays AS (
    SELECT center_id, patient_id, min(run_start) AS stays_from_day
    FROM lab_runs
    WHERE criterion = 'plt_stays' AND meets
    GROUP BY center_id, patient_id
),
has_plt AS (
    SELECT center_id, patient_id, count(*) AS plt_days
    FROM lab_daily
    WHERE analyte = 'PLT' AND day_index BETWEEN 0 AND def_recovery_plt_dose_window_days()
    GROUP BY center_id, patient_id
),
tx AS (
    SELECT t.center_id, t.patient_id, t.units_reported, t.dose_e11,
           date_diff('day', p.index_date, CAST(t.transfused_at AS DATE)) AS day_index
    FROM transfusions t
    JOIN patient_index p ON p.center_id = t.center_id AND p.patient_id = t.patient_id
    WHERE t.transfused_at IS NOT NULL
),
counted AS (
    SELECT tx.*
    FROM tx
    LEFT JOIN stays s ON s.center_id = tx.center_id AND s.patient_id = tx.patient_id
    WHERE tx.day_index BETWEEN 0 AND def_recovery_plt_dose_window_days()
      AND (s.stays_from_day IS NULL OR tx.day_index < s.stays_from_day)
),
sums AS (
    SELECT center_id, patient_id,
           count(*) AS n,
           sum(units_reported) AS units,
           sum(dose_e11) AS dose,
           count(*) FILTER (WHERE units_reported IS NULL) AS units_missing,
           count(*) FILTER (WHERE dose_e11 IS NULL) AS dose_missing
    FROM counted
    GROUP BY center_id, patient_id
),
lost AS (
    -- never stayed >= 20 and last seen alive before the window's end: the total is unknown
    SELECT p.center_id, p.patient_id,
           s.stays_from_day IS NULL
           AND NOT coalesce(f.settled_through_day >= def_recovery_plt_dose_window_days(), false)
               AS followup_ended
    FROM patient_index p
    LEFT JOIN stays s ON s.center_id = p.center_id AND s.patient_id = p.patient_id
    LEFT JOIN patient_followup f ON f.center_id = p.center_id AND f.patient_id = p.patient_id
)
SELECT p.center_id,
       p.patient_id,
       CASE WHEN h.plt_days > 0 AND NOT l.followup_ended THEN s.stays_from_day IS NOT NULL END
           AS plt_stays_reached,
       s.stays_from_day AS plt_stays_from_day,
       CASE WHEN coalesce(k.transfusions, true) AND NOT l.followup_ended THEN coalesce(x.n, 0) END
           AS plt_transfusions_until_recovery,
       CASE WHEN NOT (coalesce(k.transfusions, true) AND coalesce(k.transfusions__units_reported, true))
                THEN NULL
            WHEN l.followup_ended THEN NULL
            WHEN x.n IS NULL THEN 0.0
            WHEN x.units_missing > 0 THEN NULL
            ELSE x.units END AS plt_units_until_recovery,
       CASE WHEN NOT (coalesce(k.transfusions, true) AND coalesce(k.transfusions__dose_e11, true))
                THEN NULL
            WHEN l.followup_ended THEN NULL
            WHEN x.n IS NULL THEN 0.0
            WHEN x.dose_missing > 0 THEN NULL
            ELSE x.dose END AS plt_dose_e11_until_recovery,
       coalesce(x.units_missing, 0) AS plt_units_missing,
       coalesce(x.dose_missing, 0) AS plt_dose_missing,
       l.followup_ended AS plt_followup_ended
FROM patient_index p
JOIN lost l ON l.center_id = p.center_id AND l.patient_id = p.patient_id
LEFT JOIN center_collects k ON k.center_id = p.center_id
LEFT JOIN stays s ON s.center_id = p.center_id AND s.patient_id = p.patient_id
LEFT JOIN has_plt h ON h.center_id = p.center_id AND h.patient_id = p.patient_id
LEFT JOIN sums x ON x.center_id = p.center_id AND x.patient_id = p.patient_id;
