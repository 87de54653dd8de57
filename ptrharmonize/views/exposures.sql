-- patient_exposures: infection and supportive medications during the index treatment.
--
-- Window: calendar days exposures.window_start_days (0) .. exposures.window_days (30) from the
-- index date (the study observed CAR-T patients for the first month). A record without a date
-- counts as within the window when exposures.include_undated (default true: the center
-- recorded it for this treatment episode).
--   infection          at least one infection episode in the window
--   tocilizumab        at least one tocilizumab course; tocilizumab_doses = sum of n_doses
--                      (a course without n_doses counts as 1 dose)
--   corticosteroid, tpo_ra, il11, ivig, gcsf: at least one course in the window
--
-- Three states (issue 16): no record in a table the center collects means "none" (false, 0);
-- a center that does not collect infections (center_collects) has infection and n_infections
-- NULL, one that does not collect medications (or their drug) has every drug column NULL.
-- Follow-up (issue 16; patient_followup.settled_through_day): "none in the
-- window" needs the patient followed to the window's last day or dead before it; a patient last
-- seen alive on day 12 has every flag that is not true NULL (unknown), and the counts
-- (n_infections, tocilizumab_doses) NULL, since records after the last contact are unknown.
-- exposures_followup_ended says so (true: alive, not known dead, last seen before that day).
--
-- Columns: center_id, patient_id, infection, n_infections, tocilizumab, tocilizumab_doses,
--   corticosteroid, tpo_ra, il11, ivig, gcsf, exposures_followup_ended
CREATE OR REPLACE VIEW patient_exposures AS
WITH inf AS (
    SELECT i.center_id, i.patient_id, count(*) AS n
    FROM infections i
    JOIN patient_index p ON p.center_id = i.center_id AND p.patient_id = i.patient_id
    WHERE CASE WHEN i.onset_on IS NULL THEN def_exposures_include_undated()
               ELSE date_diff('day', p.index_date, i.onset_on)
                    BETWEEN def_exposures_window_start_days() AND def_exposures_window_days()
          END
    GROUP BY i.center_id, i.patient_id
),
med AS (
    SELECT m.center_id, m.patient_id,
           count(*) FILTER (WHERE m.drug = 'tocilizumab') AS tocilizumab_courses,
           sum(coalesce(m.n_doses, 1)) FILTER (WHERE m.drug = 'tocilizumab') AS tocilizumab_doses,
           bool_or(m.drug = 'corticosteroid') AS corticosteroid,
           bool_or(m.drug = 'tpo_ra') AS tpo_ra,
           bool_or(m.drug = 'il11') AS il11,
           bool_or(m.drug = 'ivig') AS ivig,
           bool_or(m.drug = 'gcsf') AS gcsf
    FROM medications m
    JOIN patient_index p ON p.center_id = m.center_id AND p.patient_id = m.patient_id
    WHERE CASE WHEN m.started_on IS NULL THEN def_exposures_include_undated()
               ELSE date_diff('day', p.index_date, m.started_on)
                    BETWEEN def_exposures_window_start_days() AND def_exposures_window_days()
          END
    GROUP BY m.center_id, m.patient_id
)
SELECT p.center_id,
       p.patient_id,
       CASE WHEN x.inf AND (coalesce(i.n, 0) > 0 OR f.seen) THEN coalesce(i.n, 0) > 0 END AS infection,
       CASE WHEN x.inf AND f.seen THEN coalesce(i.n, 0) END AS n_infections,
       CASE WHEN x.med AND (coalesce(m.tocilizumab_courses, 0) > 0 OR f.seen)
            THEN coalesce(m.tocilizumab_courses, 0) > 0 END AS tocilizumab,
       CASE WHEN x.med AND f.seen THEN CAST(coalesce(m.tocilizumab_doses, 0) AS BIGINT) END AS tocilizumab_doses,
       CASE WHEN x.med AND (coalesce(m.corticosteroid, false) OR f.seen)
            THEN coalesce(m.corticosteroid, false) END AS corticosteroid,
       CASE WHEN x.med AND (coalesce(m.tpo_ra, false) OR f.seen) THEN coalesce(m.tpo_ra, false) END AS tpo_ra,
       CASE WHEN x.med AND (coalesce(m.il11, false) OR f.seen) THEN coalesce(m.il11, false) END AS il11,
       CASE WHEN x.med AND (coalesce(m.ivig, false) OR f.seen) THEN coalesce(m.ivig, false) END AS ivig,
       CASE WHEN x.med AND (coalesce(m.gcsf, false) OR f.seen) THEN coalesce(m.gcsf, false) END AS gcsf,
       NOT f.seen AS exposures_followup_ended
FROM patient_index p
LEFT JOIN inf i ON i.center_id = p.center_id AND i.patient_id = p.patient_id
LEFT JOIN med m ON m.center_id = p.center_id AND m.patient_id = p.patient_id
LEFT JOIN (
    SELECT center_id,
           coalesce(infections, true) AS inf,
           coalesce(medications, true) AND coalesce(medications__drug, true) AS med
    FROM center_collects
) x ON x.center_id = p.center_id
LEFT JOIN (
    SELECT center_id, patient_id,
           coalesce(settled_through_day >= def_exposures_window_days(), false) AS seen
    FROM patient_followup
) f ON f.center_id = p.center_id AND f.patient_id = p.patient_id;
