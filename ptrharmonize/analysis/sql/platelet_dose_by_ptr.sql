-- Figure 3A: platelets transfused until the count first stays >= 20 x10^9/L, PTR vs non-PTR.
--
-- Population: the CAR-T subgroup (index treatment CAR-T AND cytokine data present); in the
-- study 25 patients, 1,846 units in all. Units as the center counts them, and the dose in
-- x10^11 platelets (comparable across centers whose units differ).
SELECT
    center_id,
    patient_id,
    ptr,
    plt_units_until_recovery,             -- units
    plt_dose_e11_until_recovery           -- x10^11 platelets
FROM patient_summary
WHERE treatment_type = 'car_t'
  AND has_cytokines
  AND ptr IS NOT NULL
ORDER BY center_id, patient_id;
