-- patient_followup: how long each patient was followed, for the windowed outcomes.
--
-- A yes/no outcome "by day W" (recovery by day 90, improvement and bleeding by day 30) is known
-- "no" only for a patient followed to day W, or who died before W without it (death settles it:
-- no recovery can follow). A patient last seen alive on day 40 has no observed status at day 90:
-- the outcome is unknown (NULL), never "no" (issue 16; definitions `followup`).
--
--   last_record_on    latest date of any dated record of the patient (labs, transfusions,
--                     CRS assessments, bleeding events, medications, infections)
--   last_contact_on   latest of last_followup_on, death_on and (followup.last_contact_from_records)
--                     last_record_on
--   last_contact_day  days from the index date to last_contact_on
--   death_day         days from the index date to death_on (NULL: alive, or deaths not collected)
--   settled_through_day
--                     the last day W through which "none in the window" is known: a windowed
--                     "no" by day W stands when settled_through_day >= W, and is NULL otherwise.
--                     Infinity (DOUBLE 'infinity', never NULL) when death_day is known (a death
--                     settles every window: no event can follow it, and last contact is never
--                     before the death) or when followup.windowed_no_needs_followup is false (the
--                     study's handling: every "no" kept); else last_contact_day (NULL without any
--                     date: nothing is settled). The one place the rule of issue 16 is written;
--                     patient_recovery, patient_platelet_dose, patient_bleeding and
--                     patient_exposures read it.
--
-- Columns: center_id, patient_id, death_on, death_day, last_followup_on, last_record_on,
--   last_contact_on, last_contact_day, settled_through_day
CREATE OR REPLACE VIEW patient_followup AS
WITH records AS (
    SELECT center_id, patient_id, max(last_on) AS last_record_on
    FROM (
        SELECT center_id, patient_id, CAST(max(measured_at) AS DATE) AS last_on
        FROM labs GROUP BY center_id, patient_id
        UNION ALL
        SELECT center_id, patient_id, CAST(max(transfused_at) AS DATE)
        FROM transfusions GROUP BY center_id, patient_id
        UNION ALL
        SELECT center_id, patient_id, max(assessed_on)
        FROM crs_assessments GROUP BY center_id, patient_id
        UNION ALL
        SELECT center_id, patient_id, max(onset_on)
        FROM bleeding_events GROUP BY center_id, patient_id
        UNION ALL
        SELECT center_id, patient_id, max(started_on)
        FROM medications GROUP BY center_id, patient_id
        UNION ALL
        SELECT center_id, patient_id, max(onset_on)
        FROM infections GROUP BY center_id, patient_id
    )
    GROUP BY center_id, patient_id
),
one_outcome AS (
    SELECT center_id, patient_id, death_on, last_followup_on
    FROM outcomes
    QUALIFY row_number() OVER (PARTITION BY center_id, patient_id ORDER BY death_on NULLS LAST) = 1
),
joined AS (
    SELECT p.center_id, p.patient_id, p.index_date, o.death_on, o.last_followup_on, r.last_record_on,
           greatest(o.last_followup_on, o.death_on,
                    CASE WHEN def_followup_last_contact_from_records() THEN r.last_record_on END)
               AS last_contact_on
    FROM patient_index p
    LEFT JOIN one_outcome o ON o.center_id = p.center_id AND o.patient_id = p.patient_id
    LEFT JOIN records r ON r.center_id = p.center_id AND r.patient_id = p.patient_id
)
SELECT center_id, patient_id, death_on,
       date_diff('day', index_date, death_on) AS death_day,
       last_followup_on, last_record_on, last_contact_on,
       date_diff('day', index_date, last_contact_on) AS last_contact_day,
       -- "followed to day W, or dead before it" (issue 16): death_day <= W OR last_contact_day >= W.
       -- A known death_day > W has last_contact_day >= death_day > W (last_contact_on is the latest
       -- of dates that include death_on), so a known death settles every W.
       CASE WHEN NOT def_followup_windowed_no_needs_followup()
                 OR date_diff('day', index_date, death_on) IS NOT NULL
                THEN CAST('infinity' AS DOUBLE)
            ELSE CAST(date_diff('day', index_date, last_contact_on) AS DOUBLE)
       END AS settled_through_day
FROM joined;
