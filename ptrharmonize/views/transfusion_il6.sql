-- transfusion_il6: every evaluable transfusion event (transfusion_events; units given together
-- are one transfusion, transfusion_id is the event_id, its first unit) with the highest IL-6
-- measured on the same calendar day as the event's start (the study's Figure 2B pairs each
-- 12-h CCI with the IL-6 of the day of transfusion).
--
-- Evaluable transfusions without an IL-6 that day are kept with il6_same_day NULL, so an
-- analysis can count what it leaves out.
--
-- Columns: center_id, patient_id, transfusion_id, transfused_at, cci, low_cci, il6_same_day,
--   il6_below_lod (the highest value is an assay limit), n_il6_same_day
CREATE OR REPLACE VIEW transfusion_il6 AS
WITH il6 AS (
    SELECT center_id, patient_id, CAST(measured_at AS DATE) AS day, value, below_lod
    FROM labs
    WHERE analyte = 'IL6' AND value IS NOT NULL AND measured_at IS NOT NULL
)
SELECT c.center_id,
       c.patient_id,
       c.event_id AS transfusion_id,
       c.transfused_at,
       c.cci,
       c.low_cci,
       max(i.value) AS il6_same_day,
       arg_max(i.below_lod, i.value) AS il6_below_lod,
       count(i.value) AS n_il6_same_day
FROM transfusion_events c
LEFT JOIN il6 i
    ON i.center_id = c.center_id AND i.patient_id = c.patient_id
   AND i.day = CAST(c.transfused_at AS DATE)
WHERE c.evaluable
GROUP BY c.center_id, c.patient_id, c.event_id, c.transfused_at, c.cci, c.low_cci;
