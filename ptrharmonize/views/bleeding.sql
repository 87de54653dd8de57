-- patient_bleeding: WHO bleeding grade within 30 days of the index date, and the first
-- competing event for the cumulative incidence of grade 3-4 bleeding (the study's Figure 3B).
--
-- Window: onset day 0..bleeding.window_days (30), day 0 being the index date. An event without
-- an onset date cannot be placed in the window and is not counted (n_bleeding_undated says how
-- many there are). No event recorded means grade 0.
--   worst_bleeding_grade_30d   highest WHO grade in the window (0-4)
--   bleeding_grade_3plus_30d   worst grade >= bleeding.severe_min_grade (3)
-- Competing events, from the index date, first of:
--   'bleeding'  onset of the first bleeding of grade >= severe_min_grade in the window
--   'death'     death in the window (a bleeding on the day of death counts as the bleeding)
--   'censored'  neither: at min(window_days, last contact), where last contact is
--               patient_followup.last_contact_on (the latest of last_followup_on, death_on and,
--               with followup.last_contact_from_records, every dated record of the patient:
--               labs, transfusions, CRS assessments, bleeding, medications, infections), the
--               same as for every windowed outcome. With no date at all the time is 0.
--   event_time_days = days from the index date to that date (a double).
--
-- Three states (issue 16; an unknown is never a "no"):
--   - a center that does not collect bleeding_events (or its who_grade or onset_on column) has
--     every bleeding outcome NULL (bleeding_not_assessable_reason 'bleeding_not_collected'),
--     never grade 0; its fatal bleeds must not become competing deaths, so the event is NULL too;
--   - an event in the window without a grade, or an undated event that could be worse than the
--     worst dated one, makes the worst grade unknown ('grade_or_date_unknown'); grade >= 3 is
--     still true when a dated event reaches it, and unknown only when an unknown event could;
--   - a patient last seen alive before day window_days (30) (patient_followup.settled_through_day
--     < window_days) has worst_bleeding_grade_30d NULL
--     and, without a grade >= 3 bleed, bleeding_grade_3plus_30d NULL, reason 'followup_ended_in_window':
--     not "no bleed by day 30" (the competing-risk event stays 'censored' at last contact);
--   - a center that does not collect outcomes (or death_on) cannot tell death from censoring:
--     event_type and event_time_days are NULL ('deaths_not_collected').
--
-- Columns: center_id, patient_id, worst_bleeding_grade_30d, bleeding_grade_3plus_30d,
--   first_severe_bleeding_day, n_bleeding_undated, death_on, death_day, last_followup_on,
--   last_contact_on, event_type, event_time_days, bleeding_not_assessable_reason,
--   event_not_assessable_reason
CREATE OR REPLACE VIEW patient_bleeding AS
WITH bleeds AS (
    SELECT b.center_id, b.patient_id, b.who_grade,
           date_diff('day', p.index_date, b.onset_on) AS day_index
    FROM bleeding_events b
    JOIN patient_index p ON p.center_id = b.center_id AND p.patient_id = b.patient_id
),
per_patient AS (
    SELECT center_id, patient_id,
           max(who_grade) FILTER (WHERE day_index BETWEEN 0 AND def_bleeding_window_days())
               AS worst_grade,
           min(day_index) FILTER (WHERE day_index BETWEEN 0 AND def_bleeding_window_days()
                                  AND who_grade >= def_bleeding_severe_min_grade())
               AS severe_day,
           count(*) FILTER (WHERE day_index IS NULL) AS n_undated,
           -- events whose grade or date is unknown, and that could be graded >= severe in the window
           count(*) FILTER (WHERE (day_index IS NULL OR day_index BETWEEN 0 AND def_bleeding_window_days())
                                  AND (who_grade IS NULL
                                       OR (day_index IS NULL AND who_grade >= def_bleeding_severe_min_grade())))
               AS n_unknown_severe,
           -- the same for the worst grade: a grade-unknown event in the window or undated, or
           -- an undated one above the worst dated grade
           count(*) FILTER (WHERE (day_index IS NULL OR day_index BETWEEN 0 AND def_bleeding_window_days())
                                  AND who_grade IS NULL) AS n_ungraded,
           max(who_grade) FILTER (WHERE day_index IS NULL) AS undated_max
    FROM bleeds
    GROUP BY center_id, patient_id
),
joined AS (
    SELECT p.center_id, p.patient_id, p.index_date,
           b.worst_grade, b.severe_day, coalesce(b.n_undated, 0) AS n_undated,
           CASE WHEN NOT (coalesce(k.bleeding_events, true) AND coalesce(k.bleeding_events__who_grade, true)
                          AND coalesce(k.bleeding_events__onset_on, true))
                    THEN 'bleeding_not_collected'
                WHEN coalesce(b.n_unknown_severe, 0) > 0 AND b.severe_day IS NULL
                    THEN 'grade_or_date_unknown'
           END AS severe_reason,
           CASE WHEN NOT (coalesce(k.bleeding_events, true) AND coalesce(k.bleeding_events__who_grade, true)
                          AND coalesce(k.bleeding_events__onset_on, true))
                    THEN 'bleeding_not_collected'
                WHEN coalesce(b.n_ungraded, 0) > 0 OR b.undated_max > coalesce(b.worst_grade, 0)
                    THEN 'grade_or_date_unknown'
           END AS worst_reason,
           NOT (coalesce(k.outcomes, true) AND coalesce(k.outcomes__death_on, true)) AS deaths_not_collected,
           -- death, last contact and how far the follow-up settles a "no": patient_followup,
           -- the same for every windowed outcome (issue 16)
           f.death_on, f.last_followup_on, f.death_day, f.last_contact_on, f.settled_through_day
    FROM patient_index p
    LEFT JOIN per_patient b ON b.center_id = p.center_id AND b.patient_id = p.patient_id
    LEFT JOIN patient_followup f ON f.center_id = p.center_id AND f.patient_id = p.patient_id
    LEFT JOIN center_collects k ON k.center_id = p.center_id
),
events AS (
    SELECT j.*,
           CASE WHEN j.death_day BETWEEN 0 AND def_bleeding_window_days() THEN j.death_day END
               AS death_day_in_window,
           -- issue 16: "no grade >= 3 bleed by day 30" needs follow-up to day 30 (or a death
           -- before it); a patient last seen alive on day 12 has that outcome unknown
           coalesce(j.settled_through_day >= def_bleeding_window_days(), false) AS followed_30
    FROM joined j
)
SELECT center_id,
       patient_id,
       CASE WHEN index_date IS NOT NULL AND worst_reason IS NULL AND followed_30
            THEN CAST(coalesce(worst_grade, 0) AS BIGINT) END
           AS worst_bleeding_grade_30d,
       CASE WHEN index_date IS NULL OR severe_reason = 'bleeding_not_collected' THEN NULL
            WHEN severe_day IS NOT NULL THEN true
            WHEN severe_reason IS NOT NULL THEN NULL
            WHEN NOT followed_30 THEN NULL
            ELSE false END
           AS bleeding_grade_3plus_30d,
       severe_day AS first_severe_bleeding_day,
       n_undated AS n_bleeding_undated,
       death_on,
       death_day,
       last_followup_on,
       last_contact_on,
       CASE
           WHEN index_date IS NULL OR event_reason IS NOT NULL THEN NULL
           WHEN severe_day IS NOT NULL
                AND (death_day_in_window IS NULL OR severe_day <= death_day_in_window) THEN 'bleeding'
           WHEN death_day_in_window IS NOT NULL THEN 'death'
           ELSE 'censored'
       END AS event_type,
       CAST(CASE
           WHEN index_date IS NULL OR event_reason IS NOT NULL THEN NULL
           WHEN severe_day IS NOT NULL
                AND (death_day_in_window IS NULL OR severe_day <= death_day_in_window) THEN severe_day
           WHEN death_day_in_window IS NOT NULL THEN death_day_in_window
           ELSE least(def_bleeding_window_days(),
                      greatest(coalesce(date_diff('day', index_date, last_contact_on), 0), 0))
       END AS DOUBLE) AS event_time_days,
       coalesce(severe_reason, worst_reason,
                CASE WHEN NOT followed_30 AND severe_day IS NULL THEN 'followup_ended_in_window' END)
           AS bleeding_not_assessable_reason,
       event_reason AS event_not_assessable_reason
FROM (
    SELECT e.*,
           -- the competing event is unknown when whether (or when) a severe bleed happened is
           -- unknown, or when deaths are not collected
           CASE WHEN severe_reason = 'bleeding_not_collected' THEN 'bleeding_not_collected'
                WHEN severe_reason IS NOT NULL THEN severe_reason
                WHEN deaths_not_collected THEN 'deaths_not_collected'
           END AS event_reason
    FROM events e
);
