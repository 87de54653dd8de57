-- Figure 3B: cumulative incidence of WHO grade 3-4 bleeding after CAR-T, death competing.
--
-- Population: the CAR-T subgroup (index treatment CAR-T AND cytokine data present) with a
-- known event time. Time 0 is the CAR-T infusion (index_date); the first event within the
-- bleeding window is a grade 3-4 bleed or death, else the patient is censored at the end of
-- the window or at the last follow-up (patient_summary.event_time_days, event_type).
SELECT
    center_id,
    patient_id,
    ptr,
    -- day of PTR onset (the transfusion that completed the PTR rule), from the infusion; NULL
    -- without PTR. Used to say which bleeds of the PTR group came before the patient became
    -- refractory: the fixed-group comparison counts them as PTR bleeds.
    date_diff('day', index_date, CAST(ptr_onset_at AS DATE)) AS ptr_onset_day,
    event_time_days,                      -- days from infusion to the first event or censoring
    event_type                            -- 'bleeding' | 'death' | 'censored'
FROM patient_summary
WHERE treatment_type = 'car_t'
  AND has_cytokines
  AND ptr IS NOT NULL
  AND event_time_days IS NOT NULL
  AND event_type IS NOT NULL
ORDER BY center_id, patient_id;
