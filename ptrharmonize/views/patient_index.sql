-- patient_index: one row per patient with the index treatment.
--
-- Every per-patient view starts from here, so a patient with no transfusion, no lab or no
-- CRS record still has a row. `treatments` holds one row per patient (the CDM rule); should a
-- store ever hold two, the earliest index date is taken so the derived views stay one row per
-- patient.
--
-- Columns: center_id, patient_id, treatment_type, regimen, car_target, index_date
CREATE OR REPLACE VIEW patient_index AS
WITH one_patient AS (
    SELECT center_id, patient_id
    FROM patients
    GROUP BY center_id, patient_id
),
one_treatment AS (
    SELECT center_id, patient_id, treatment_type, regimen, car_target, index_date
    FROM treatments
    QUALIFY row_number() OVER (
        PARTITION BY center_id, patient_id
        ORDER BY index_date NULLS LAST, treatment_type, regimen
    ) = 1
)
SELECT p.center_id, p.patient_id,
       t.treatment_type, t.regimen, t.car_target, t.index_date
FROM one_patient p
LEFT JOIN one_treatment t USING (center_id, patient_id);
