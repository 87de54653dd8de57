-- transfusion_units, transfusion_events, transfusion_cci: platelet transfusions grouped into
-- transfusion EVENTS, the corrected count increment (CCI) of each event, and whether it is
-- evaluable for PTR.
--
-- EVENTS (issue 17). Units given to the same patient form one event when each starts at most
-- cci.event_gap_h (2) hours after the previous unit of the event and, with
-- cci.event_same_pre_count, has the same pre count (value and time) as that unit. Two units
-- given together are one transfusion: the event's dose is the sum of the units' doses, its CCI
-- uses the shared pre count and the post count taken after its LAST unit, and it is evaluable
-- only if every unit is. event_id is the transfusion_id of its first unit. PTR is counted on
-- events (ptr.sql).
--
-- CCI = (post count - pre count) x 1000 x BSA / event dose_e11
--   counts in x10^9/L (x 1000 turns them into /uL, the unit of the CCI definition), BSA in m2
--   (patient_bsa), dose in x10^11 platelets. CCI is computed whenever these four are known.
--
-- Pre count: the count recorded on the event's first unit, else the last `labs` PLT at or
-- before that unit's start. Post count: the count recorded on the event's latest unit that has
-- one, else the first `labs` PLT from the window's lower bound on. A lab count is taken
-- whatever its age; the window checks then decide, so the reason says why it does not qualify.
--
-- POST WINDOW: from (start of the last unit + cci.infusion_h, the assumed end of the
-- transfusion) + after_end_min_minutes to that end + after_end_max_hours, both inclusive, of
-- the window cci.post_window (study_12h: 10 min .. 12 h; one_hour: 10 min .. 1 h; h18_24:
-- 10 h .. 24 h). With the defaults a count 40 min .. 12 h 30 min after the start is in.
--
-- Evaluable for PTR: `not_evaluable_reason` IS NULL and the CCI is known. The reason is the
-- first failing check, in this order (stable codes):
--   no_transfusion_time               a unit's transfused_at missing
--   abo_incompatible                  a unit abo_compatible = false (when cci.require_abo_compatible)
--   abo_unknown                       a unit's abo_compatible missing (unless cci.abo_unknown_evaluable);
--                                     abo_not_collected when the center does not collect the column
--   storage_72h_or_more               a unit's storage_h >= cci.max_storage_h (72): units must be stored < 72 h
--   storage_unknown                   a unit's storage_h missing (unless cci.storage_unknown_evaluable);
--                                     storage_not_collected when the center does not collect it
--   no_dose                           a unit's dose_e11 missing or <= 0
--   no_pre_count                      no pre count recorded and no PLT lab before the event
--   pre_count_time_unknown            recorded pre count without its time (unless cci.accept_untimed_counts)
--   pre_count_after_transfusion       pre count taken after the event started
--   pre_count_too_early               more than cci.pre_window_h (24) h before the event; exactly 24 h is in
--   no_post_count                     no post count recorded and no PLT lab in or after the window
--   post_count_time_unknown           recorded post count without its time (unless cci.accept_untimed_counts)
--   post_count_outside_window         post count before or after the post window
--   post_count_after_next_transfusion post count taken after the patient's next event started
--                                     (when cci.post_before_next_transfusion)
--   no_bsa                            height or weight missing
--
-- transfusion_units: one row per transfusion with its event_seq (helper for the two below).
-- transfusion_events columns: center_id, patient_id, event_seq (1, 2, ... per patient), event_id,
--   transfusion_ids, n_units,
--   transfused_at (first unit's start), last_transfused_at, day_index, bsa_m2, dose_e11,
--   units_reported, max_storage_h, pre_count_e9l, pre_count_at, pre_count_source,
--   hours_before_pre, post_count_e9l, post_count_at, post_count_source, hours_to_post (from the
--   last unit's start), next_transfused_at (next event), cci, evaluable, not_evaluable_reason,
--   low_cci (evaluable and CCI < cci.refractory_below; NULL when not evaluable),
--   evaluability_unknown (the reason is a missing fact, see the list at the end; patient_ptr
--   asks whether such events could change the PTR status)
-- transfusion_cci columns (one row per transfusion; counts, CCI and evaluability are its
--   event's): center_id, patient_id, transfusion_id, transfused_at, product, bsa_m2, dose_e11,
--   units_reported, storage_h, abo_compatible, crossmatched, pre_count_e9l, pre_count_at,
--   pre_count_source, hours_before_pre, post_count_e9l, post_count_at, post_count_source,
--   hours_to_post, next_transfused_at, cci, evaluable, not_evaluable_reason, low_cci,
--   evaluability_unknown, event_id, event_n_units, event_dose_e11
CREATE OR REPLACE VIEW transfusion_units AS
WITH plt AS (
    SELECT center_id, patient_id, measured_at, value
    FROM labs
    WHERE analyte = 'PLT' AND value IS NOT NULL AND measured_at IS NOT NULL
),
-- Each unit's pre count: recorded, else the last PLT at or before its start (ASOF join).
unit_pre AS (
    SELECT t.*,
           lp.value AS lab_pre, lp.measured_at AS lab_pre_at
    FROM transfusions t
    ASOF LEFT JOIN plt lp
        ON lp.center_id = t.center_id AND lp.patient_id = t.patient_id
       AND t.transfused_at >= lp.measured_at
),
counted AS (
    SELECT u.*,
           CASE WHEN u.pre_count_e9l IS NOT NULL THEN u.pre_count_e9l ELSE u.lab_pre END AS pre,
           CASE WHEN u.pre_count_e9l IS NOT NULL THEN u.pre_count_at ELSE u.lab_pre_at END AS pre_at,
           CASE WHEN u.pre_count_e9l IS NOT NULL THEN 'transfusion'
                WHEN u.lab_pre IS NOT NULL THEN 'labs' END AS pre_source
    FROM unit_pre u
),
-- Clause: a unit joins the previous unit's event when it starts within event_gap_h of it and
-- (event_same_pre_count) has the same pre count.
stepped AS (
    SELECT c.*,
           lag(c.transfused_at) OVER w AS prev_start,
           lag(c.pre) OVER w AS prev_pre,
           lag(c.pre_at) OVER w AS prev_pre_at
    FROM counted c
    WINDOW w AS (PARTITION BY c.center_id, c.patient_id ORDER BY c.transfused_at, c.transfusion_id)
)
SELECT s.* EXCLUDE (prev_start, prev_pre, prev_pre_at),
       sum(CASE WHEN s.prev_start IS NULL OR s.transfused_at IS NULL
                     OR date_diff('microsecond', s.prev_start, s.transfused_at) / 3600000000.0 > def_cci_event_gap_h()
                     OR (def_cci_event_same_pre_count()
                         AND (s.pre IS DISTINCT FROM s.prev_pre OR s.pre_at IS DISTINCT FROM s.prev_pre_at))
                THEN 1 ELSE 0 END)
           OVER (PARTITION BY s.center_id, s.patient_id ORDER BY s.transfused_at, s.transfusion_id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS event_seq
FROM stepped s;

CREATE OR REPLACE VIEW transfusion_events AS
WITH plt AS (
    SELECT center_id, patient_id, measured_at, value
    FROM labs
    WHERE analyte = 'PLT' AND value IS NOT NULL AND measured_at IS NOT NULL
),
-- Clause: the event's dose is the sum of its units; every unit must be evaluable.
events AS (
    SELECT center_id, patient_id, event_seq,
           first(transfusion_id ORDER BY transfused_at, transfusion_id) AS event_id,
           list(transfusion_id ORDER BY transfused_at, transfusion_id) AS transfusion_ids,
           count(*) AS n_units,
           min(transfused_at) AS transfused_at,
           max(transfused_at) AS last_transfused_at,
           bool_or(transfused_at IS NULL) AS any_time_missing,
           sum(dose_e11) AS dose_e11,
           bool_or(dose_e11 IS NULL OR dose_e11 <= 0) AS any_dose_bad,
           sum(units_reported) AS units_reported,
           bool_or(abo_compatible = false) AS any_abo_incompatible,
           bool_or(abo_compatible IS NULL) AS any_abo_unknown,
           max(storage_h) AS max_storage_h,
           bool_or(storage_h IS NULL) AS any_storage_unknown,
           first(pre ORDER BY transfused_at, transfusion_id) AS pre,
           first(pre_at ORDER BY transfused_at, transfusion_id) AS pre_at,
           first(pre_source ORDER BY transfused_at, transfusion_id) AS pre_source,
           -- the post count recorded on the latest unit that has one
           first(post_count_e9l ORDER BY transfused_at DESC, transfusion_id DESC)
               FILTER (WHERE post_count_e9l IS NOT NULL) AS rec_post,
           first(post_count_at ORDER BY transfused_at DESC, transfusion_id DESC)
               FILTER (WHERE post_count_e9l IS NOT NULL) AS rec_post_at
    FROM transfusion_units
    GROUP BY center_id, patient_id, event_seq
),
-- Clause: the post window, from the assumed end of the last unit (start + infusion_h).
windowed AS (
    SELECT e.*,
           e.last_transfused_at + to_microseconds(CAST((def_cci_infusion_h() + def_cci_post_min_h()) * 3600000000.0 AS BIGINT))
               AS post_from,
           e.last_transfused_at + to_microseconds(CAST((def_cci_infusion_h() + def_cci_post_max_h()) * 3600000000.0 AS BIGINT))
               AS post_to,
           lead(e.transfused_at) OVER (PARTITION BY e.center_id, e.patient_id ORDER BY e.transfused_at, e.event_id)
               AS next_transfused_at
    FROM events e
),
with_post AS (
    SELECT w.*,
           lq.value AS lab_post, lq.measured_at AS lab_post_at
    FROM windowed w
    ASOF LEFT JOIN plt lq
        ON lq.center_id = w.center_id AND lq.patient_id = w.patient_id
       AND lq.measured_at >= w.post_from
),
counts AS (
    SELECT w.*,
           b.bsa_m2,
           CASE WHEN w.rec_post IS NOT NULL THEN w.rec_post ELSE w.lab_post END AS post,
           CASE WHEN w.rec_post IS NOT NULL THEN w.rec_post_at ELSE w.lab_post_at END AS post_at,
           CASE WHEN w.rec_post IS NOT NULL THEN 'transfusion'
                WHEN w.lab_post IS NOT NULL THEN 'labs' END AS post_source
    FROM with_post w
    LEFT JOIN patient_bsa b ON b.center_id = w.center_id AND b.patient_id = w.patient_id
),
timed AS (
    SELECT c.*,
           -- hours, exact to the microsecond (3.6e9 us in an hour)
           date_diff('microsecond', c.pre_at, c.transfused_at) / 3600000000.0 AS hours_before_pre,
           date_diff('microsecond', c.last_transfused_at, c.post_at) / 3600000000.0 AS hours_to_post,
           CASE WHEN c.pre IS NOT NULL AND c.post IS NOT NULL AND NOT c.any_dose_bad AND c.bsa_m2 IS NOT NULL
                THEN (c.post - c.pre) * 1000 * c.bsa_m2 / c.dose_e11
           END AS cci
    FROM counts c
),
judged AS (
    SELECT t.*,
           CASE
               WHEN t.any_time_missing THEN 'no_transfusion_time'
               WHEN def_cci_require_abo_compatible() AND t.any_abo_incompatible
                   THEN 'abo_incompatible'
               WHEN def_cci_require_abo_compatible() AND t.any_abo_unknown
                    AND NOT def_cci_abo_unknown_evaluable()
                   THEN CASE WHEN coalesce(k.transfusions__abo_compatible, true) THEN 'abo_unknown'
                             ELSE 'abo_not_collected' END
               WHEN t.max_storage_h >= def_cci_max_storage_h() THEN 'storage_72h_or_more'
               WHEN t.any_storage_unknown AND NOT def_cci_storage_unknown_evaluable()
                   THEN CASE WHEN coalesce(k.transfusions__storage_h, true) THEN 'storage_unknown'
                             ELSE 'storage_not_collected' END
               WHEN t.any_dose_bad THEN 'no_dose'
               WHEN t.pre IS NULL THEN 'no_pre_count'
               WHEN t.pre_at IS NULL AND NOT def_cci_accept_untimed_counts()
                   THEN 'pre_count_time_unknown'
               WHEN t.pre_at > t.transfused_at THEN 'pre_count_after_transfusion'
               WHEN t.hours_before_pre > def_cci_pre_window_h() THEN 'pre_count_too_early'
               WHEN t.post IS NULL THEN 'no_post_count'
               WHEN t.post_at IS NULL AND NOT def_cci_accept_untimed_counts()
                   THEN 'post_count_time_unknown'
               WHEN t.post_at < t.post_from OR t.post_at > t.post_to
                   THEN 'post_count_outside_window'
               WHEN def_cci_post_before_next_transfusion() AND t.post_at > t.next_transfused_at
                   THEN 'post_count_after_next_transfusion'
               WHEN t.bsa_m2 IS NULL THEN 'no_bsa'
           END AS not_evaluable_reason
    FROM timed t
    LEFT JOIN center_collects k ON k.center_id = t.center_id
)
SELECT j.center_id,
       j.patient_id,
       j.event_seq,
       j.event_id,
       j.transfusion_ids,
       j.n_units,
       j.transfused_at,
       j.last_transfused_at,
       date_diff('day', p.index_date, CAST(j.transfused_at AS DATE)) AS day_index,
       j.bsa_m2,
       j.dose_e11,
       j.units_reported,
       j.max_storage_h,
       j.pre AS pre_count_e9l,
       j.pre_at AS pre_count_at,
       j.pre_source AS pre_count_source,
       j.hours_before_pre,
       j.post AS post_count_e9l,
       j.post_at AS post_count_at,
       j.post_source AS post_count_source,
       j.hours_to_post,
       j.next_transfused_at,
       j.cci,
       (j.not_evaluable_reason IS NULL AND j.cci IS NOT NULL) AS evaluable,
       j.not_evaluable_reason,
       CASE WHEN j.not_evaluable_reason IS NULL AND j.cci IS NOT NULL
            THEN j.cci < def_cci_refractory_below() END AS low_cci,
       -- evaluability unknown: a fact the study's definition needs is an empty cell or not
       -- collected (issue 16), as opposed to a known fact that excludes the transfusion
       -- (ABO-incompatible, stored >= 72 h, no count measured in its window)
       j.not_evaluable_reason IN (
           'no_transfusion_time', 'abo_unknown', 'abo_not_collected', 'storage_unknown',
           'storage_not_collected', 'no_dose', 'pre_count_time_unknown', 'post_count_time_unknown',
           'no_bsa'
       ) AS evaluability_unknown
FROM judged j
LEFT JOIN patient_index p ON p.center_id = j.center_id AND p.patient_id = j.patient_id;

CREATE OR REPLACE VIEW transfusion_cci AS
SELECT u.center_id,
       u.patient_id,
       u.transfusion_id,
       u.transfused_at,
       u.product,
       e.bsa_m2,
       u.dose_e11,
       u.units_reported,
       u.storage_h,
       u.abo_compatible,
       u.crossmatched,
       e.pre_count_e9l,
       e.pre_count_at,
       e.pre_count_source,
       e.hours_before_pre,
       e.post_count_e9l,
       e.post_count_at,
       e.post_count_source,
       e.hours_to_post,
       e.next_transfused_at,
       e.cci,
       e.evaluable,
       e.not_evaluable_reason,
       e.low_cci,
       e.evaluability_unknown,
       e.event_id,
       e.n_units AS event_n_units,
       e.dose_e11 AS event_dose_e11
FROM transfusion_units u
JOIN transfusion_events e
    ON e.center_id = u.center_id AND e.patient_id = u.patient_id AND e.event_seq = u.event_seq;
