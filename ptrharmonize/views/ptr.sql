-- patient_ptr: platelet transfusion refractoriness (PTR) of each patient.
--
-- PTR is counted on transfusion EVENTS (transfusion_events: units given together are one
-- transfusion). Only evaluable events count, and only those starting in the PTR window: days
-- ptr.window_start_days (0) .. ptr.window_days (30) from the index date, inclusive. They are
-- ordered by start time (then event_id). An event "fails" when its CCI < cci.refractory_below
-- (5000); a CCI of exactly 5000 does not fail. n_evaluable, n_low_cci count evaluable events
-- in the window.
--   ptr.rule = 'consecutive' (default; the study's results): PTR when ptr.min_failed (2)
--     failures follow each other in that order, with no evaluable adequate transfusion between.
--     Non-evaluable transfusions in between neither break nor extend a run.
--   ptr.rule = 'any_two' (the study's methods): PTR when the patient has ptr.min_failed
--     failures at all.
-- ptr_onset_at is the start of the transfusion that completed the rule (the second failure).
--
-- Three states (issue 16: an unknown is never a "no"), ptr_status:
--   'yes'             the rule is met on the evaluable transfusions.
--   'no'              the rule is not met, and would still not be met if every transfusion
--                     whose evaluability is unknown (transfusion_cci.evaluability_unknown: an
--                     empty storage time, ABO, dose, time or BSA, or a column the center does
--                     not collect) were an evaluable failure. A patient whose transfusions are
--                     all judged on known facts is 'no' however few are evaluable: the study
--                     counts its patients with one evaluable transfusion as non-PTR.
--   'not_assessable'  otherwise: the unknowns could complete the rule (an untimed transfusion
--                     could sit anywhere, so it can complete a run with any failure), or the
--                     center does not collect transfusions.
-- ptr is NULL unless the status is yes or no; ptr_assessable = status <> 'not_assessable'.
-- ptr_not_assessable_reason: 'transfusions_not_collected', else the most frequent reason
-- among the patient's transfusions of unknown evaluability (storage_unknown,
-- storage_not_collected, abo_unknown, ...; ties by name).
--
-- Columns: center_id, patient_id, ptr, n_evaluable, n_low_cci, longest_low_run,
--   ptr_onset_at, ptr_rule, ptr_assessable, ptr_status, ptr_not_assessable_reason,
--   n_evaluability_unknown
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
),
-- The worst case: every transfusion of unknown evaluability taken as an evaluable failure.
worst AS (
    SELECT center_id, patient_id, event_id AS transfusion_id, transfused_at,
           CASE WHEN evaluable THEN low_cci ELSE true END AS low
    FROM transfusion_events
    WHERE (evaluable OR evaluability_unknown)
      -- an untimed event could lie in the PTR window
      AND (day_index IS NULL
           OR day_index BETWEEN def_ptr_window_start_days() AND def_ptr_window_days())
),
worst_runs AS (
    SELECT w.*,
           sum(CASE WHEN low THEN 1 ELSE 0 END) OVER v AS n_low_so_far,
           sum(CASE WHEN low THEN 0 ELSE 1 END) OVER v AS run_id
    FROM worst w
    WINDOW v AS (
        PARTITION BY center_id, patient_id
        ORDER BY transfused_at NULLS LAST, transfusion_id
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    )
),
worst_met AS (
    SELECT center_id, patient_id,
           bool_or(CASE def_ptr_rule()
                       WHEN 'consecutive' THEN low AND run_length >= def_ptr_min_failed()
                       ELSE low AND n_low_so_far >= def_ptr_min_failed()
                   END) AS could_meet,
           -- an untimed unknown can stand next to any failure
           count(*) FILTER (WHERE transfused_at IS NULL) > 0
               AND count(*) FILTER (WHERE low) >= def_ptr_min_failed() AS untimed_could_meet
    FROM (
        SELECT r.*,
               CASE WHEN low THEN row_number() OVER (
                        PARTITION BY center_id, patient_id, run_id, low
                        ORDER BY transfused_at NULLS LAST, transfusion_id)
                    ELSE 0 END AS run_length
        FROM worst_runs r
    )
    GROUP BY center_id, patient_id
),
unknown_reasons AS (
    SELECT center_id, patient_id,
           sum(n) AS n_unknown,
           first(not_evaluable_reason ORDER BY n DESC, not_evaluable_reason) AS top_reason
    FROM (
        SELECT center_id, patient_id, not_evaluable_reason, count(*) AS n
        FROM transfusion_events
        WHERE evaluability_unknown
          AND (day_index IS NULL
               OR day_index BETWEEN def_ptr_window_start_days() AND def_ptr_window_days())
        GROUP BY ALL
    )
    GROUP BY center_id, patient_id
),
status AS (
    SELECT p.center_id, p.patient_id, a.*, u.n_unknown, u.top_reason,
           CASE
               WHEN coalesce(a.ptr, false) THEN 'yes'
               WHEN NOT coalesce(k.transfusions, true) THEN 'not_assessable'
               WHEN coalesce(w.could_meet, false) OR coalesce(w.untimed_could_meet, false)
                   THEN 'not_assessable'
               ELSE 'no'
           END AS ptr_status,
           CASE
               WHEN coalesce(a.ptr, false) THEN NULL
               WHEN NOT coalesce(k.transfusions, true) THEN 'transfusions_not_collected'
               WHEN coalesce(w.could_meet, false) OR coalesce(w.untimed_could_meet, false)
                   THEN u.top_reason
           END AS ptr_not_assessable_reason
    FROM patient_index p
    LEFT JOIN per_patient a ON a.center_id = p.center_id AND a.patient_id = p.patient_id
    LEFT JOIN worst_met w ON w.center_id = p.center_id AND w.patient_id = p.patient_id
    LEFT JOIN unknown_reasons u ON u.center_id = p.center_id AND u.patient_id = p.patient_id
    LEFT JOIN center_collects k ON k.center_id = p.center_id
)
SELECT center_id,
       patient_id,
       CASE ptr_status WHEN 'yes' THEN true WHEN 'no' THEN false END AS ptr,
       coalesce(n_evaluable, 0) AS n_evaluable,
       coalesce(n_low_cci, 0) AS n_low_cci,
       coalesce(longest_low_run, 0) AS longest_low_run,
       ptr_onset_at,
       def_ptr_rule() AS ptr_rule,
       ptr_status <> 'not_assessable' AS ptr_assessable,
       ptr_status,
       ptr_not_assessable_reason,
       coalesce(n_unknown, 0) AS n_evaluability_unknown
FROM status;
