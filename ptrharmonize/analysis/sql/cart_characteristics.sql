-- Table 3: characteristics after CAR-T, PTR vs non-PTR.
--
-- Population: the CAR-T subgroup analysed by the study: index treatment CAR-T AND cytokine
-- data present (has_cytokines). The study excluded its one CAR-T patient (with PTR) who
-- lacked a cytokine profile from every CAR-T subgroup analysis: 25 analysed, 14 PTR, 11 not.
-- A characteristic that is unknown (NULL) leaves that patient out of that row only.
SELECT
    center_id,
    patient_id,
    ptr,
    cr,                                   -- response CR or CRi (about day 28-30)
    tocilizumab,                          -- any tocilizumab
    tocilizumab_doses,                    -- NULL where medications are not collected (never 0)
    corticosteroid,
    infection,
    neutrophil_improvement_30d,
    neutrophil_recovery_90d,
    platelet_improvement_30d,
    platelet_recovery_90d,
    crs_grade_3plus,                      -- CRS grade >= 3 (Lee 2014 by default)
    bleeding_grade_3plus_30d AS bleeding_grade_3plus,   -- WHO grade 3-4 within 30 days
    peak_temp_c                           -- peak temperature within 30 days, degC
FROM patient_summary
WHERE treatment_type = 'car_t'
  AND has_cytokines
  AND ptr IS NOT NULL
ORDER BY center_id, patient_id;
