-- PTR incidence, CAR-T vs chemotherapy, stratified by center (Cochran-Mantel-Haenszel).
--
-- Population: the same patients as ptr_by_group.sql; the stratum is the center. A center
-- that treated only one of the two groups carries no information on the comparison and is
-- left out by the analysis (listed under centers_dropped), not here.
SELECT
    center_id,               -- the stratum
    patient_id,
    treatment_type,          -- 'car_t' | 'chemotherapy'
    ptr
FROM patient_summary
WHERE treatment_type IN ('car_t', 'chemotherapy')
  AND ptr IS NOT NULL
ORDER BY center_id, patient_id;
