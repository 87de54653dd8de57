-- Figure 2A: peak cytokines, PTR vs non-PTR after CAR-T.
--
-- Population: the CAR-T subgroup (index treatment CAR-T AND cytokine data present); in the
-- study 14 PTR and 11 non-PTR. A cytokine never measured leaves the patient out of that panel.
SELECT
    center_id,
    patient_id,
    ptr,
    peak_il6,                             -- pg/mL
    peak_il10,                            -- pg/mL
    peak_ifng                             -- pg/mL
FROM patient_summary
WHERE treatment_type = 'car_t'
  AND has_cytokines
  AND ptr IS NOT NULL
ORDER BY center_id, patient_id;
