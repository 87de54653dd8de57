-- Bleeding after a landmark day: PTR as known at day L (analysis.landmark_days, --landmark-day),
-- grade 3-4 bleeding and death counted after it (time-dependent exposure; not the study's analysis).
--
-- Population: the CAR-T subgroup (index treatment CAR-T AND cytokine data present) with a known
-- PTR status and event time, as Figure 3B. The analysis keeps those still at risk at L (first
-- event or censoring after day L); `ptr_onset_day` decides who was refractory by then (a patient
-- whose PTR began after L counts as non-PTR at the landmark: his later PTR cannot explain an
-- earlier risk). Time restarts at L.
SELECT
    center_id,
    patient_id,
    ptr,                                  -- PTR at any time (the study's fixed group)
    date_diff('day', index_date, CAST(ptr_onset_at AS DATE)) AS ptr_onset_day,  -- NULL: no PTR
    event_time_days,                      -- days from infusion to the first event or censoring
    event_type                            -- 'bleeding' | 'death' | 'censored'
FROM patient_summary
WHERE treatment_type = 'car_t'
  AND has_cytokines
  AND ptr IS NOT NULL
  AND event_time_days IS NOT NULL
  AND event_type IS NOT NULL
ORDER BY center_id, patient_id;
