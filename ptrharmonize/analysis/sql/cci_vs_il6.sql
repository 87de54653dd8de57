-- Figure 2B: 12-h CCI of each transfusion against the IL-6 measured the same calendar day.
--
-- Population: transfusions, not patients. Every transfusion evaluable for PTR
-- (transfusion_il6 holds only those: ABO-compatible, stored < 72 h, both counts in their
-- windows) of a patient in the CAR-T subgroup (index treatment CAR-T AND cytokine data
-- present) with a CCI and an IL-6 measured on the day of the transfusion. The study had
-- about 79 such transfusions.
SELECT
    t.center_id,
    t.patient_id,
    t.transfusion_id,
    t.cci,                                -- corrected count increment, /uL x m2 / 10^11
    t.il6_same_day,                       -- highest IL-6 of that calendar day, pg/mL
    p.ptr
FROM transfusion_il6 AS t
JOIN patient_summary AS p
  ON p.center_id = t.center_id AND p.patient_id = t.patient_id
WHERE p.treatment_type = 'car_t'
  AND p.has_cytokines
  AND t.cci IS NOT NULL
  AND t.il6_same_day IS NOT NULL
ORDER BY t.center_id, t.patient_id, t.transfusion_id;
