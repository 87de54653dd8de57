-- transfusion_cci: the corrected count increment (CCI) of every platelet transfusion and
-- whether the transfusion is evaluable for PTR.
--
-- CCI = (post count - pre count) x 1000 x BSA / dose_e11
--   counts in x10^9/L (x 1000 turns them into /uL, the unit of the CCI definition), BSA in m2
--   (patient_bsa), dose in x10^11 platelets. CCI is computed whenever these four are known;
--   only rows with `evaluable` count for PTR.
--
-- Pre and post counts: the count recorded on the transfusion row when there is one; when it
-- is missing, the `labs` PLT series gives it:
--   pre  = the last PLT measured at or before the start of the transfusion,
--   post = the first PLT measured strictly after the start of the transfusion.
-- The lab count is taken whatever its age; the window checks below then decide, so a
-- transfusion whose nearest lab count is too old says so (`pre_count_too_early`) instead of
-- silently having no count.
--
-- Evaluable for PTR: `not_evaluable_reason` IS NULL and the CCI is known. The reason is the
-- first failing check, in this order (stable codes):
--   no_transfusion_time               transfused_at missing
--   abo_incompatible                  abo_compatible = false (when cci.require_abo_compatible)
--   abo_unknown                       abo_compatible missing (unless cci.abo_unknown_evaluable);
--                                     abo_not_collected when the center does not collect the column
--   storage_72h_or_more               storage_h >= cci.max_storage_h (72): the unit must be stored < 72 h
--   storage_unknown                   storage_h missing (unless cci.storage_unknown_evaluable);
--                                     storage_not_collected when the center does not collect it
--   no_dose                           dose_e11 missing or <= 0
--   no_pre_count                      no pre count on the row and no PLT lab before the transfusion
--   pre_count_time_unknown            recorded pre count without its time (unless cci.accept_untimed_counts)
--   pre_count_after_transfusion       pre count taken after the transfusion started
--   pre_count_too_early               pre count more than cci.pre_window_h (24) h before; exactly 24 h is in
--   no_post_count                     no post count on the row and no PLT lab after the transfusion
--   post_count_time_unknown           recorded post count without its time (unless cci.accept_untimed_counts)
--   post_count_outside_window         post count not after the start, or more than cci.post_window_h (12) h
--                                     after it; exactly 12 h is in, 12 h 1 min is out
--   post_count_after_next_transfusion post count taken after the patient's next transfusion started
--                                     (when cci.post_before_next_transfusion)
--   no_bsa                            height or weight missing
--
-- Columns: center_id, patient_id, transfusion_id, transfused_at, product, bsa_m2, dose_e11,
--   units_reported, storage_h, abo_compatible, crossmatched, pre_count_e9l, pre_count_at,
--   pre_count_source ('transfusion' | 'labs'), hours_before_pre, post_count_e9l, post_count_at,
--   post_count_source, hours_to_post, next_transfused_at, cci, evaluable, not_evaluable_reason,
--   low_cci (evaluable and CCI < cci.refractory_below; NULL when not evaluable),
--   evaluability_unknown (the reason is a missing fact: see the list at the end; patient_ptr
--   asks whether such transfusions could change the PTR status)
CREATE OR REPLACE VIEW transfusion_cci AS
WITH tx AS (
    SELECT center_id, patient_id, transfusion_id, transfused_at, product, units_reported,
           dose_e11, storage_h, abo_compatible, crossmatched,
           pre_count_e9l AS rec_pre, pre_count_at AS rec_pre_at,
           post_count_e9l AS rec_post, post_count_at AS rec_post_at
    FROM transfusions
),
-- The start of the patient's next transfusion: the next distinct start time, so two rows
-- starting at the same moment (two units given together) do not cut each other's window.
starts AS (
    SELECT center_id, patient_id, transfused_at,
           lead(transfused_at) OVER (
               PARTITION BY center_id, patient_id ORDER BY transfused_at
           ) AS next_transfused_at
    FROM (
        SELECT DISTINCT center_id, patient_id, transfused_at
        FROM transfusions
        WHERE transfused_at IS NOT NULL
    )
),
plt AS (
    SELECT center_id, patient_id, measured_at, value
    FROM labs
    WHERE analyte = 'PLT' AND value IS NOT NULL AND measured_at IS NOT NULL
),
-- ASOF joins find the nearest lab count on each side of the transfusion start in one pass.
with_labs AS (
    SELECT tx.*,
           s.next_transfused_at,
           lp.value AS lab_pre, lp.measured_at AS lab_pre_at,
           lq.value AS lab_post, lq.measured_at AS lab_post_at
    FROM tx
    LEFT JOIN starts s
        ON s.center_id = tx.center_id AND s.patient_id = tx.patient_id
       AND s.transfused_at = tx.transfused_at
    ASOF LEFT JOIN plt lp
        ON lp.center_id = tx.center_id AND lp.patient_id = tx.patient_id
       AND tx.transfused_at >= lp.measured_at
    ASOF LEFT JOIN plt lq
        ON lq.center_id = tx.center_id AND lq.patient_id = tx.patient_id
       AND lq.measured_at > tx.transfused_at
),
counts AS (
    SELECT w.*,
           b.bsa_m2,
           CASE WHEN w.rec_pre IS NOT NULL THEN w.rec_pre ELSE w.lab_pre END AS pre,
           CASE WHEN w.rec_pre IS NOT NULL THEN w.rec_pre_at ELSE w.lab_pre_at END AS pre_at,
           CASE WHEN w.rec_pre IS NOT NULL THEN 'transfusion'
                WHEN w.lab_pre IS NOT NULL THEN 'labs' END AS pre_source,
           CASE WHEN w.rec_post IS NOT NULL THEN w.rec_post ELSE w.lab_post END AS post,
           CASE WHEN w.rec_post IS NOT NULL THEN w.rec_post_at ELSE w.lab_post_at END AS post_at,
           CASE WHEN w.rec_post IS NOT NULL THEN 'transfusion'
                WHEN w.lab_post IS NOT NULL THEN 'labs' END AS post_source
    FROM with_labs w
    LEFT JOIN patient_bsa b ON b.center_id = w.center_id AND b.patient_id = w.patient_id
),
timed AS (
    SELECT c.*,
           -- hours, exact to the microsecond (3.6e9 us in an hour)
           date_diff('microsecond', c.pre_at, c.transfused_at) / 3600000000.0 AS hours_before_pre,
           date_diff('microsecond', c.transfused_at, c.post_at) / 3600000000.0 AS hours_to_post,
           CASE WHEN c.pre IS NOT NULL AND c.post IS NOT NULL AND c.dose_e11 > 0 AND c.bsa_m2 IS NOT NULL
                THEN (c.post - c.pre) * 1000 * c.bsa_m2 / c.dose_e11
           END AS cci
    FROM counts c
),
judged AS (
    SELECT t.*,
           CASE
               WHEN t.transfused_at IS NULL THEN 'no_transfusion_time'
               WHEN def_cci_require_abo_compatible() AND t.abo_compatible = false
                   THEN 'abo_incompatible'
               WHEN def_cci_require_abo_compatible() AND t.abo_compatible IS NULL
                    AND NOT def_cci_abo_unknown_evaluable()
                   THEN CASE WHEN coalesce(k.transfusions__abo_compatible, true) THEN 'abo_unknown'
                             ELSE 'abo_not_collected' END
               WHEN t.storage_h >= def_cci_max_storage_h() THEN 'storage_72h_or_more'
               WHEN t.storage_h IS NULL AND NOT def_cci_storage_unknown_evaluable()
                   THEN CASE WHEN coalesce(k.transfusions__storage_h, true) THEN 'storage_unknown'
                             ELSE 'storage_not_collected' END
               WHEN t.dose_e11 IS NULL OR t.dose_e11 <= 0 THEN 'no_dose'
               WHEN t.pre IS NULL THEN 'no_pre_count'
               WHEN t.pre_at IS NULL AND NOT def_cci_accept_untimed_counts()
                   THEN 'pre_count_time_unknown'
               WHEN t.pre_at > t.transfused_at THEN 'pre_count_after_transfusion'
               WHEN t.hours_before_pre > def_cci_pre_window_h() THEN 'pre_count_too_early'
               WHEN t.post IS NULL THEN 'no_post_count'
               WHEN t.post_at IS NULL AND NOT def_cci_accept_untimed_counts()
                   THEN 'post_count_time_unknown'
               WHEN t.post_at <= t.transfused_at OR t.hours_to_post > def_cci_post_window_h()
                   THEN 'post_count_outside_window'
               WHEN def_cci_post_before_next_transfusion() AND t.post_at > t.next_transfused_at
                   THEN 'post_count_after_next_transfusion'
               WHEN t.bsa_m2 IS NULL THEN 'no_bsa'
           END AS not_evaluable_reason
    FROM timed t
    LEFT JOIN center_collects k ON k.center_id = t.center_id
)
SELECT center_id,
       patient_id,
       transfusion_id,
       transfused_at,
       product,
       bsa_m2,
       dose_e11,
       units_reported,
       storage_h,
       abo_compatible,
       crossmatched,
       pre AS pre_count_e9l,
       pre_at AS pre_count_at,
       pre_source AS pre_count_source,
       hours_before_pre,
       post AS post_count_e9l,
       post_at AS post_count_at,
       post_source AS post_count_source,
       hours_to_post,
       next_transfused_at,
       cci,
       (not_evaluable_reason IS NULL AND cci IS NOT NULL) AS evaluable,
       not_evaluable_reason,
       CASE WHEN not_evaluable_reason IS NULL AND cci IS NOT NULL
            THEN cci < def_cci_refractory_below() END AS low_cci,
       -- evaluability unknown: a fact the study's definition needs is an empty cell or not
       -- collected (issue 16), as opposed to a known fact that excludes the transfusion
       -- (ABO-incompatible, stored >= 72 h, no count measured in its window)
       not_evaluable_reason IN (
           'no_transfusion_time', 'abo_unknown', 'abo_not_collected', 'storage_unknown',
           'storage_not_collected', 'no_dose', 'pre_count_time_unknown', 'post_count_time_unknown',
           'no_bsa'
       ) AS evaluability_unknown
FROM judged;
