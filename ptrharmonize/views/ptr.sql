-- patient_ptr: platelet transfusion refractoriness (PTR) of each patient.
--
-- PTR is counted on transfusion EVENTS (transfusion_events: units given together are one
-- transfusion). Only evaluable events count, and only those starting in the PTR window: days
-- ptr.window_start_days (0) .. ptr.window_days (30) from the index date, inclusive. They are
-- ordered by start time (then event_id). An event "fails" when its CCI < cci.refractory_below
-- (5000); a CCI of exactly 5000 does not fail.
--   ptr.rule = 'consecutive' (default; the study's results): PTR when ptr.min_failed (2)
--     failures follow each other in that order, with no evaluable adequate transfusion between.
--     Non-evaluable transfusions in between neither break nor extend a run.
--   ptr.rule = 'any_two' (the study's methods): PTR when the patient has ptr.min_failed
--     failures at all.
-- ptr_onset_at is the start of the event that completed the rule (the second failure).
-- Every patient has a row; a patient without evaluable events in the window has ptr = false.
-- n_evaluable, n_low_cci count evaluable events in the window.
--
-- Columns: center_id, patient_id, ptr, n_evaluable, n_low_cci, longest_low_run,
--   ptr_onset_at, ptr_rule, ptr_assessable (n_evaluable >= ptr.min_failed)
CREATE OR REPLACE VIEW patient_ptr AS
WITH ev AS (
    SELECT center_id, patient_id, event_id AS transfusion_id, transfused_at, cci, low_cci AS low
    FROM transfusion_events
    WHERE evaluable
      AND day_index BETWEEN def_ptr_window_start_days() AND def_ptr_window_days()
),
numbered AS (
    SELECT ev.*,
           -- run_id grows at every adequate increment, so a run of failures shares one id
           sum(CASE WHEN low THEN 0 ELSE 1 END) OVER w AS run_id,
           -- failures so far, in time order
           sum(CASE WHEN low THEN 1 ELSE 0 END) OVER w AS n_low_so_far
    FROM ev
    WINDOW w AS (
        PARTITION BY center_id, patient_id
        ORDER BY transfused_at, transfusion_id
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    )
),
runs AS (
    SELECT n.*,
           CASE WHEN low THEN row_number() OVER (
                    PARTITION BY center_id, patient_id, run_id, low
                    ORDER BY transfused_at, transfusion_id)
                ELSE 0 END AS run_length_so_far
    FROM numbered n
),
met AS (
    SELECT r.*,
           CASE def_ptr_rule()
               WHEN 'consecutive' THEN low AND run_length_so_far >= def_ptr_min_failed()
               ELSE low AND n_low_so_far >= def_ptr_min_failed()
           END AS meets_rule
    FROM runs r
),
per_patient AS (
    SELECT center_id, patient_id,
           count(*) AS n_evaluable,
           count(*) FILTER (WHERE low) AS n_low_cci,
           max(run_length_so_far) AS longest_low_run,
           bool_or(meets_rule) AS ptr,
           min(transfused_at) FILTER (WHERE meets_rule) AS ptr_onset_at
    FROM met
    GROUP BY center_id, patient_id
)
SELECT p.center_id,
       p.patient_id,
       coalesce(a.ptr, false) AS ptr,
       coalesce(a.n_evaluable, 0) AS n_evaluable,
       coalesce(a.n_low_cci, 0) AS n_low_cci,
       coalesce(a.longest_low_run, 0) AS longest_low_run,
       a.ptr_onset_at,
       def_ptr_rule() AS ptr_rule,
       coalesce(a.n_evaluable, 0) >= def_ptr_min_failed() AS ptr_assessable
FROM patient_index p
LEFT JOIN per_patient a USING (center_id, patient_id);
