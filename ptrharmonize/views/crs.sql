-- patient_crs: the worst CRS grade of each patient over all its assessments (crs_graded).
--
--   lee2014_grade, astct2019_grade  max of the grades recomputed from signs (NULL when no
--                                   assessment recorded signs)
--   reported_grade, reported_scale  the highest grade the center reported, and its scale
--   reported_lee2014_grade          the highest grade reported on the Lee 2014 scale
--   crs_grade                       the grade the analyses use (Lee 2014, like the study): the
--                                   maximum of crs_graded.crs_grade (per assessment the worst
--                                   grade the signs prove, never below the grade reported on
--                                   lee2014). A patient with no
--                                   crs_assessments row has crs_grade 0 (the CDM records one row
--                                   per day with CRS signs, so none means no CRS) -- but only at
--                                   a center that collects crs_assessments (center_collects).
--                                   Three states (issue 16), never 0 by default: crs_grade is
--                                   NULL where the center does not collect CRS, or where any
--                                   assessment day gives neither signs nor a Lee 2014 grade (the
--                                   worst day may be that one).
--   crs_grade_3plus                 crs_grade >= crs.group_high_min_grade (3); true as soon as a
--                                   known day reaches it (an unknown day cannot lower a maximum),
--                                   NULL when the grade is unknown and no known day reaches it
--   crs_not_assessable_reason       crs_not_collected | signs_unknown (NULL when known)
--   n_assessments                   number of crs_assessments rows
--   n_assessments_ungraded          rows that give neither signs nor a Lee 2014 grade
--   n_reported_above_signs          assessments whose reported grade is above what the signs
--                                   prove on the same scale (crs_graded.reported_above_signs)
--
-- Columns: center_id, patient_id, lee2014_grade, astct2019_grade, reported_grade,
--   reported_scale, reported_lee2014_grade, crs_grade, crs_grade_3plus, n_assessments,
--   n_reported_above_signs, crs_not_assessable_reason, n_assessments_ungraded
CREATE OR REPLACE VIEW patient_crs AS
WITH per_patient AS (
    SELECT center_id, patient_id,
           max(lee2014_grade) AS lee2014_grade,
           max(astct2019_grade) AS astct2019_grade,
           max(reported_grade) AS reported_grade,
           arg_max(reported_scale, reported_grade) AS reported_scale,
           max(reported_grade) FILTER (WHERE reported_scale = 'lee2014') AS reported_lee2014_grade,
           max(crs_grade) AS crs_grade,
           count(*) AS n_assessments,
           count(*) FILTER (WHERE reported_above_signs) AS n_reported_above_signs,
           count(*) FILTER (WHERE crs_grade IS NULL) AS n_ungraded
    FROM crs_graded
    GROUP BY center_id, patient_id
),
joined AS (
    SELECT p.center_id, p.patient_id,
           a.lee2014_grade, a.astct2019_grade, a.reported_grade, a.reported_scale,
           a.reported_lee2014_grade,
           a.crs_grade AS known_max,
           CASE WHEN NOT coalesce(k.crs_assessments, true) THEN 'crs_not_collected'
                WHEN a.n_ungraded > 0 THEN 'signs_unknown'
           END AS reason,
           coalesce(a.n_assessments, 0) AS n_assessments,
           coalesce(a.n_reported_above_signs, 0) AS n_reported_above_signs,
           coalesce(a.n_ungraded, 0) AS n_ungraded
    FROM patient_index p
    LEFT JOIN per_patient a USING (center_id, patient_id)
    LEFT JOIN center_collects k ON k.center_id = p.center_id
)
SELECT center_id, patient_id, lee2014_grade, astct2019_grade, reported_grade, reported_scale,
       reported_lee2014_grade,
       CAST(CASE WHEN reason IS NOT NULL THEN NULL
                 WHEN n_assessments = 0 THEN 0
                 ELSE known_max END AS BIGINT) AS crs_grade,
       CASE WHEN reason = 'crs_not_collected' THEN NULL
            WHEN known_max >= def_crs_group_high_min_grade() THEN true
            WHEN reason IS NOT NULL THEN NULL
            ELSE coalesce(known_max, 0) >= def_crs_group_high_min_grade()
       END AS crs_grade_3plus,
       n_assessments,
       n_reported_above_signs,
       reason AS crs_not_assessable_reason,
       n_ungraded AS n_assessments_ungraded
FROM joined;
