-- center_collects: which tables and columns each center collects, one row per center.
--
-- Three states are kept apart (issue 16; CDM v1): a fact is known, unknown (an empty cell) or
-- not collected (the center does not collect the table or column: the file or column is
-- absent, or the mapping declares it `not_collected`). The store records the last per center
-- and submission in `collection` (written at ingest, ptrharmonize/collection.py); the views
-- below read it here, so that a center that does not collect bleeding gets NULL bleeding
-- outcomes, never "no bleeding".
--
-- A center without any `collection` record (a store written before the record existed, or
-- rows inserted by hand) is taken as collecting everything (recorded = false says so).
--
-- Columns: center_id, recorded, then one boolean per table or column the derivations need,
-- named <table> or <table>__<column>; a column of a table not collected is not collected.
CREATE OR REPLACE VIEW center_collects AS
WITH centers AS (
    SELECT DISTINCT center_id FROM patient_index
),
rec AS (
    SELECT center_id, "table" AS t, "column" AS c, collected FROM collection
)
SELECT k.center_id,
       count(r.t) > 0 AS recorded,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'transfusions' AND r.c IS NULL), true)
           AS transfusions,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'transfusions' AND r.c = 'storage_h'), true)
           AS transfusions__storage_h,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'transfusions' AND r.c = 'abo_compatible'), true)
           AS transfusions__abo_compatible,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'transfusions' AND r.c = 'units_reported'), true)
           AS transfusions__units_reported,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'transfusions' AND r.c = 'dose_e11'), true)
           AS transfusions__dose_e11,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'labs' AND r.c IS NULL), true)
           AS labs,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'crs_assessments' AND r.c IS NULL), true)
           AS crs_assessments,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'bleeding_events' AND r.c IS NULL), true)
           AS bleeding_events,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'bleeding_events' AND r.c = 'who_grade'), true)
           AS bleeding_events__who_grade,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'bleeding_events' AND r.c = 'onset_on'), true)
           AS bleeding_events__onset_on,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'medications' AND r.c IS NULL), true)
           AS medications,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'medications' AND r.c = 'drug'), true)
           AS medications__drug,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'infections' AND r.c IS NULL), true)
           AS infections,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'outcomes' AND r.c IS NULL), true)
           AS outcomes,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'outcomes' AND r.c = 'death_on'), true)
           AS outcomes__death_on,
       coalesce(bool_and(r.collected) FILTER (WHERE r.t = 'outcomes' AND r.c = 'response'), true)
           AS outcomes__response
FROM centers k
LEFT JOIN rec r ON r.center_id = k.center_id
GROUP BY k.center_id;
