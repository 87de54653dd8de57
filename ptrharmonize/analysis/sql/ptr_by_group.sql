-- Table 2: PTR incidence, CAR-T vs salvage chemotherapy (pooled over centers).
--
-- Population: every patient whose index treatment is CAR-T or chemotherapy and whose PTR
-- status is known (patient_ptr: at least the transfusions the PTR rule needs). The study
-- counts all 26 CAR-T patients here, including the one without cytokine data.
SELECT
    center_id,
    patient_id,
    treatment_type,          -- 'car_t' | 'chemotherapy'
    ptr                      -- PTR by the definition in force (definitions.yaml: ptr, cci)
FROM patient_summary
WHERE treatment_type IN ('car_t', 'chemotherapy')
  AND ptr IS NOT NULL
ORDER BY center_id, patient_id;
