-- Table 4: risk factors of PTR after CAR-T, binary logistic regression.
--
-- Population: the CAR-T subgroup (index treatment CAR-T AND cytokine data present), as in
-- cart_characteristics.sql: the univariate screen uses that table's tests, and the model is
-- fitted on the patients with every selected variable known (complete cases).
SELECT
    center_id,
    patient_id,
    ptr,                                  -- the outcome
    cr,
    tocilizumab,
    tocilizumab_doses,                    -- NULL where medications are not collected (never 0)
    corticosteroid,
    infection,
    neutrophil_improvement_30d,
    neutrophil_recovery_90d,
    platelet_improvement_30d,
    platelet_recovery_90d,
    crs_grade_3plus,
    bleeding_grade_3plus_30d AS bleeding_grade_3plus,
    peak_temp_c,
    peak_il6,
    peak_il10,
    peak_ifng,
    age_years,
    CASE sex WHEN 'M' THEN TRUE WHEN 'F' THEN FALSE END AS male
FROM patient_summary
WHERE treatment_type = 'car_t'
  AND has_cytokines
  AND ptr IS NOT NULL
ORDER BY center_id, patient_id;
