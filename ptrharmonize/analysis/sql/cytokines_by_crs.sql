-- Figure 1: peak cytokines by CRS grade (<= 2 vs >= 3) after CAR-T.
--
-- Population: the CAR-T subgroup (index treatment CAR-T AND cytokine data present) with a
-- known CRS grade. Peaks are the highest values within the peaks window of the index date
-- (definitions.yaml: peaks); a cytokine never measured leaves the patient out of that panel.
SELECT
    center_id,
    patient_id,
    crs_grade,                            -- max grade, Lee 2014 from signs, else as reported
    crs_grade_3plus,                      -- grade >= crs.group_high_min_grade
    peak_il6,                             -- pg/mL
    peak_il10,                            -- pg/mL
    peak_ifng                             -- pg/mL
FROM patient_summary
WHERE treatment_type = 'car_t'
  AND has_cytokines
  AND crs_grade_3plus IS NOT NULL
ORDER BY center_id, patient_id;
