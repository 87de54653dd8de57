-- Table 1: baseline characteristics by treatment group (CAR-T vs salvage chemotherapy).
--
-- Population: every patient of the store (after --center / --since) whose index treatment is
-- CAR-T or salvage chemotherapy. Nobody is excluded: the CAR-T patient without cytokine data
-- is part of Table 1 (44 patients in the study: 26 CAR-T, 18 chemotherapy).
-- A characteristic that is unknown (NULL) leaves that patient out of that row only.
SELECT
    center_id,
    patient_id,
    treatment_type,                                          -- 'car_t' | 'chemotherapy'
    age_years,                                               -- years at the index treatment
    CASE sex WHEN 'M' THEN TRUE WHEN 'F' THEN FALSE END AS male,   -- sex 'U' counts as unknown
    bsa_m2,                                                  -- body surface area, m2
    bm_blast_pct,                                            -- bone-marrow blasts, %
    n_relapses,
    disease_status = 'relapsed' AS relapsed,                 -- vs primary refractory
    prior_allo_hsct,
    extramedullary,
    infection
FROM patient_summary
WHERE treatment_type IN ('car_t', 'chemotherapy')
ORDER BY center_id, patient_id;
