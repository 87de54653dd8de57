-- lab_daily and lab_runs: the lab series by calendar day, and the runs of "consecutive days"
-- that the improvement and recovery definitions need.
--
-- HOW "CONSECUTIVE DAYS" ARE COUNTED
-- 1. Each series is reduced to one value per calendar day: the DAILY MINIMUM of the analyte
--    (a day counts as above a threshold only if every count that day is above it).
--    Days are numbered from the index date: day_index 0 is the index date.
-- 2. A day qualifies when its daily minimum meets the criterion (below).
-- 3. A run is a sequence of qualifying measured days in which each day follows the previous
--    one by at most recovery.max_gap_days calendar days (default 1). With the default, A DAY
--    WITHOUT A MEASUREMENT BREAKS THE RUN: "7 consecutive days" needs a count on each of 7
--    calendar days. Any non-qualifying day in between breaks the run too.
-- 4. Run length = calendar days from the run's first day to the current day, inclusive.
--    The criterion is met on the first day the run reaches the required length; that day
--    must lie inside the criterion's window (the whole run is observed within it).
--
-- CRITERIA (criterion column of lab_runs; thresholds from definitions `recovery`)
--   anc_improvement  days 0..window_improvement_days (30); qualifies: after the first day with
--                    ANC < anc_agranulocytosis_below (0.5) and ANC > anc_improvement_above (0.5);
--                    required: MORE than anc_improvement_days (3), i.e. 4 days
--   plt_improvement  days 0..window_improvement_days (30); qualifies: after the first day with
--                    PLT < plt_trigger_below (20), PLT > plt_improvement_above (20), and no
--                    platelet transfusion started that day or in the plt_transfusion_effect_days
--                    (3) days before it: the run starts after the last transfusion that could
--                    explain the count (a transfusion day with no count also breaks the run);
--                    required: plt_improvement_days (7)
--   plt_stays        days 0..plt_dose_window_days (90); qualifies: PLT >= plt_dose_until_stays_above
--                    (20), after the first day below plt_trigger_below when plt_stays_after_fall,
--                    and on a day without platelet transfusion when plt_stays_without_transfusion;
--                    required: plt_stays_days (7)
--
-- lab_daily columns: center_id, patient_id, analyte, day, day_index, daily_min, daily_max, n_values
-- lab_runs columns: criterion, center_id, patient_id, day_index, run_start, run_length,
--   required_days, meets (this day completes a run of the required length)
CREATE OR REPLACE VIEW lab_daily AS
SELECT l.center_id,
       l.patient_id,
       l.analyte,
       CAST(l.measured_at AS DATE) AS day,
       date_diff('day', p.index_date, CAST(l.measured_at AS DATE)) AS day_index,
       min(l.value) AS daily_min,
       max(l.value) AS daily_max,
       count(*) AS n_values
FROM labs l
JOIN patient_index p ON p.center_id = l.center_id AND p.patient_id = l.patient_id
WHERE l.value IS NOT NULL AND l.measured_at IS NOT NULL
GROUP BY l.center_id, l.patient_id, l.analyte, CAST(l.measured_at AS DATE), p.index_date;

CREATE OR REPLACE VIEW lab_runs AS
WITH tx_days AS (
    SELECT DISTINCT t.center_id, t.patient_id,
           date_diff('day', p.index_date, CAST(t.transfused_at AS DATE)) AS day_index
    FROM transfusions t
    JOIN patient_index p ON p.center_id = t.center_id AND p.patient_id = t.patient_id
    WHERE t.transfused_at IS NOT NULL
),
anc AS (
    SELECT center_id, patient_id, day_index, daily_min
    FROM lab_daily
    WHERE analyte = 'ANC'
),
plt AS (
    SELECT center_id, patient_id, day_index, daily_min
    FROM lab_daily
    WHERE analyte = 'PLT'
),
-- PLT days and transfusion days together: a transfusion day is a day of the series even
-- without a count, so it can break a transfusion-free run.
plt_tx AS (
    SELECT coalesce(p.center_id, x.center_id) AS center_id,
           coalesce(p.patient_id, x.patient_id) AS patient_id,
           coalesce(p.day_index, x.day_index) AS day_index,
           p.daily_min,
           x.day_index IS NOT NULL AS transfused
    FROM plt p
    FULL JOIN tx_days x
        ON x.center_id = p.center_id AND x.patient_id = p.patient_id AND x.day_index = p.day_index
),
-- Clause (issue 17): a count within plt_transfusion_effect_days after a platelet transfusion
-- could be the transfused platelets.
plt_explained AS (
    SELECT t.*,
           EXISTS (
               SELECT 1 FROM tx_days x
               WHERE x.center_id = t.center_id AND x.patient_id = t.patient_id
                 AND x.day_index BETWEEN t.day_index - def_recovery_plt_transfusion_effect_days()
                                     AND t.day_index
           ) AS explained
    FROM plt_tx t
),
series AS (
    -- neutrophil improvement
    SELECT 'anc_improvement' AS criterion, center_id, patient_id, day_index,
           daily_min < def_recovery_anc_agranulocytosis_below() AS below,
           daily_min > def_recovery_anc_improvement_above() AS above,
           true AS after_fall_required,
           def_recovery_anc_improvement_days() + 1 AS required_days
    FROM anc
    WHERE day_index BETWEEN 0 AND def_recovery_window_improvement_days()
    UNION ALL
    -- platelet improvement: above the trigger without a transfusion that day
    SELECT 'plt_improvement', center_id, patient_id, day_index,
           daily_min < def_recovery_plt_trigger_below(),
           daily_min > def_recovery_plt_improvement_above() AND NOT explained,
           true,
           def_recovery_plt_improvement_days()
    FROM plt_explained
    WHERE day_index BETWEEN 0 AND def_recovery_window_improvement_days()
    UNION ALL
    -- platelet count stays >= 20 (the end of the platelet-dose count)
    SELECT 'plt_stays', center_id, patient_id, day_index,
           daily_min < def_recovery_plt_trigger_below(),
           daily_min >= def_recovery_plt_dose_until_stays_above()
               AND (NOT def_recovery_plt_stays_without_transfusion() OR NOT transfused),
           def_recovery_plt_stays_after_fall(),
           def_recovery_plt_stays_days()
    FROM plt_tx
    WHERE day_index BETWEEN 0 AND def_recovery_plt_dose_window_days()
      AND (daily_min IS NOT NULL OR def_recovery_plt_stays_without_transfusion())
),
qualified AS (
    SELECT s.*,
           coalesce(
               s.above
               AND (NOT s.after_fall_required
                    OR s.day_index > min(CASE WHEN s.below THEN s.day_index END)
                                     OVER (PARTITION BY s.criterion, s.center_id, s.patient_id)),
               false) AS qualifies
    FROM series s
),
stepped AS (
    SELECT q.*,
           lag(q.qualifies) OVER w AS prev_qualifies,
           lag(q.day_index) OVER w AS prev_day
    FROM qualified q
    WINDOW w AS (PARTITION BY q.criterion, q.center_id, q.patient_id ORDER BY q.day_index)
),
numbered AS (
    SELECT s.*,
           -- a new run starts on a qualifying day whose previous series day did not qualify
           -- or lies more than max_gap_days back
           sum(CASE WHEN s.qualifies
                         AND (s.prev_qualifies IS DISTINCT FROM true
                              OR s.day_index - s.prev_day > def_recovery_max_gap_days())
                    THEN 1 ELSE 0 END)
               OVER (PARTITION BY s.criterion, s.center_id, s.patient_id ORDER BY s.day_index
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run_id
    FROM stepped s
),
runs AS (
    SELECT n.criterion, n.center_id, n.patient_id, n.day_index, n.required_days,
           min(n.day_index) OVER (PARTITION BY n.criterion, n.center_id, n.patient_id, n.run_id)
               AS run_start
    FROM numbered n
    WHERE n.qualifies
)
SELECT criterion, center_id, patient_id, day_index, run_start,
       day_index - run_start + 1 AS run_length,
       required_days,
       day_index - run_start + 1 >= required_days AS meets
FROM runs;
