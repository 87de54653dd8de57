-- patient_peaks: peak cytokines and peak temperature within the peaks window.
--
-- Window: calendar days peaks.window_start_days (0) .. peaks.window_days (30) from the index
-- date, inclusive: [index_date, index_date + 30 days]. Peak = the highest value measured in
-- the window (a below-LOD value counts as its limit). Peak temperature is the highest
-- crs_assessments.max_temp_c of an assessment dated in the window.
--   has_cytokines  at least one IL-6, IL-10 or IFN-gamma value in the window (the study left
--                  out of its CAR-T subgroup analyses the patient without a cytokine profile);
--                  NULL, with n_cytokine_values, where the center does not collect labs
--                  (center_collects): not collected is not "no cytokine data" (issue 16)
--
-- Columns: center_id, patient_id, peak_il6, peak_il10, peak_ifng, peak_crp, peak_ferritin,
--   n_cytokine_values, has_cytokines, peak_temp_c
CREATE OR REPLACE VIEW patient_peaks AS
WITH labs_in_window AS (
    SELECT l.center_id, l.patient_id, l.analyte, l.value
    FROM labs l
    JOIN patient_index p ON p.center_id = l.center_id AND p.patient_id = l.patient_id
    WHERE l.value IS NOT NULL
      AND l.analyte IN ('IL6', 'IL10', 'IFNG', 'CRP', 'FERRITIN')
      AND date_diff('day', p.index_date, CAST(l.measured_at AS DATE))
          BETWEEN def_peaks_window_start_days() AND def_peaks_window_days()
),
lab_peaks AS (
    SELECT center_id, patient_id,
           max(value) FILTER (WHERE analyte = 'IL6') AS peak_il6,
           max(value) FILTER (WHERE analyte = 'IL10') AS peak_il10,
           max(value) FILTER (WHERE analyte = 'IFNG') AS peak_ifng,
           max(value) FILTER (WHERE analyte = 'CRP') AS peak_crp,
           max(value) FILTER (WHERE analyte = 'FERRITIN') AS peak_ferritin,
           count(*) FILTER (WHERE analyte IN ('IL6', 'IL10', 'IFNG')) AS n_cytokine_values
    FROM labs_in_window
    GROUP BY center_id, patient_id
),
temp_peaks AS (
    SELECT c.center_id, c.patient_id, max(c.max_temp_c) AS peak_temp_c
    FROM crs_assessments c
    JOIN patient_index p ON p.center_id = c.center_id AND p.patient_id = c.patient_id
    WHERE date_diff('day', p.index_date, c.assessed_on)
          BETWEEN def_peaks_window_start_days() AND def_peaks_window_days()
    GROUP BY c.center_id, c.patient_id
)
SELECT p.center_id,
       p.patient_id,
       l.peak_il6,
       l.peak_il10,
       l.peak_ifng,
       l.peak_crp,
       l.peak_ferritin,
       CASE WHEN k.labs IS NOT FALSE THEN coalesce(l.n_cytokine_values, 0) END AS n_cytokine_values,
       CASE WHEN k.labs IS NOT FALSE THEN coalesce(l.n_cytokine_values, 0) > 0 END AS has_cytokines,
       t.peak_temp_c
FROM patient_index p
LEFT JOIN center_collects k ON k.center_id = p.center_id
LEFT JOIN lab_peaks l ON l.center_id = p.center_id AND l.patient_id = p.patient_id
LEFT JOIN temp_peaks t ON t.center_id = p.center_id AND t.patient_id = p.patient_id;
