-- patient_summary: one row per patient with everything the study's analyses compare.
--
-- A join of the per-patient views; nothing is derived here except `cr`:
--   patients / patient_index   demographics, disease, treatment_type, index_date
--   patient_bsa                bsa_m2
--   patient_ptr                ptr (NULL unless assessable), ptr_status (yes | no |
--                              not_assessable), ptr_not_assessable_reason, n_evaluable,
--                              n_low_cci, ptr_onset_at
--   patient_crs                crs_grade (Lee 2014 from signs, else reported on lee2014; 0 with
--                              no assessment at a center collecting CRS), crs_grade_3plus,
--                              crs_not_assessable_reason, lee2014/astct2019 grades
--   patient_peaks              peak IL-6 / IL-10 / IFN-gamma / temperature in days 0..30,
--                              has_cytokines
--   patient_exposures          infection, tocilizumab (+ doses), corticosteroid
--   outcomes                   response; cr = response is 'CR' or 'CRi' (NULL when unknown)
--   patient_recovery           neutrophil / platelet improvement (30 d) and recovery (90 d);
--                              followup_ends_before_30d/_90d: last seen alive before that day
--                              (a windowed "no" is then NULL, issue 16; patient_followup)
--   patient_platelet_dose      units and dose until the count first stays >= 20
--   patient_bleeding           worst WHO grade in 30 days, competing event time and type,
--                              bleeding_/event_not_assessable_reason
-- Why any of these is NULL (unknown or not collected): view patient_missing.
--
-- Columns (contract in docs/architecture.md, more welcome): see the SELECT list.
CREATE OR REPLACE VIEW patient_summary AS
WITH one_patient AS (
    SELECT *
    FROM patients
    QUALIFY row_number() OVER (PARTITION BY center_id, patient_id ORDER BY source_row) = 1
),
one_outcome AS (
    SELECT center_id, patient_id, response
    FROM outcomes
    QUALIFY row_number() OVER (PARTITION BY center_id, patient_id ORDER BY death_on NULLS LAST) = 1
)
SELECT i.center_id,
       i.patient_id,
       i.treatment_type,
       i.regimen,
       i.car_target,
       i.index_date,
       p.age_years,
       p.sex,
       p.height_cm,
       p.weight_kg,
       b.bsa_m2,
       p.diagnosis,
       p.disease_status,
       p.n_relapses,
       p.prior_allo_hsct,
       p.extramedullary,
       p.bm_blast_pct,
       r.ptr,
       r.ptr_status,
       r.ptr_not_assessable_reason,
       r.n_evaluable,
       r.n_low_cci,
       r.ptr_onset_at,
       c.crs_grade,
       c.crs_grade_3plus,
       c.crs_not_assessable_reason,
       c.lee2014_grade,
       c.astct2019_grade,
       c.reported_grade AS crs_reported_grade,
       c.reported_scale AS crs_reported_scale,
       k.peak_il6,
       k.peak_il10,
       k.peak_ifng,
       k.has_cytokines,
       k.peak_temp_c,
       e.infection,
       e.tocilizumab,
       e.tocilizumab_doses,
       e.corticosteroid,
       e.exposures_followup_ended,
       o.response,
       o.response IN ('CR', 'CRi') AS cr,
       v.anc_agranulocytosis_30d,
       v.neutrophil_improvement_30d,
       v.neutrophil_recovery_90d,
       v.plt_below_trigger_30d,
       v.platelet_improvement_30d,
       v.platelet_recovery_90d,
       v.followup_ends_before_30d,
       v.followup_ends_before_90d,
       d.plt_stays_reached,
       d.plt_stays_from_day,
       d.plt_units_until_recovery,
       d.plt_dose_e11_until_recovery,
       d.plt_followup_ended,
       bl.worst_bleeding_grade_30d,
       bl.bleeding_grade_3plus_30d,
       bl.event_time_days,
       bl.event_type,
       bl.bleeding_not_assessable_reason,
       bl.event_not_assessable_reason,
       bl.death_on,
       bl.last_followup_on,
       bl.last_contact_on
FROM patient_index i
JOIN one_patient p ON p.center_id = i.center_id AND p.patient_id = i.patient_id
LEFT JOIN patient_bsa b ON b.center_id = i.center_id AND b.patient_id = i.patient_id
LEFT JOIN patient_ptr r ON r.center_id = i.center_id AND r.patient_id = i.patient_id
LEFT JOIN patient_crs c ON c.center_id = i.center_id AND c.patient_id = i.patient_id
LEFT JOIN patient_peaks k ON k.center_id = i.center_id AND k.patient_id = i.patient_id
LEFT JOIN patient_exposures e ON e.center_id = i.center_id AND e.patient_id = i.patient_id
LEFT JOIN one_outcome o ON o.center_id = i.center_id AND o.patient_id = i.patient_id
LEFT JOIN patient_recovery v ON v.center_id = i.center_id AND v.patient_id = i.patient_id
LEFT JOIN patient_platelet_dose d ON d.center_id = i.center_id AND d.patient_id = i.patient_id
LEFT JOIN patient_bleeding bl ON bl.center_id = i.center_id AND bl.patient_id = i.patient_id;
