-- crs_fever_masking: the courses of antipyretic or anti-cytokine therapy that can mask fever
-- (ASTCT 2019 footnote: "In patients who have CRS then receive antipyretic or anticytokine
-- therapy such as tocilizumab or steroids, fever is no longer required to grade subsequent
-- CRS severity"). The drugs are crs.astct2019.fever_masking_drugs (tocilizumab,
-- corticosteroid); crs_graded decides from which day each course lifts the fever requirement.
-- Undated courses cannot be placed in time and are left out.
--
-- Its own file so that `derive.install_crs_graded` can put an empty relation in its place when
-- a submission has no medications table.
--
-- Columns: center_id, patient_id, drug, started_on
CREATE OR REPLACE VIEW crs_fever_masking AS
SELECT CAST(center_id AS VARCHAR) AS center_id,
       CAST(patient_id AS VARCHAR) AS patient_id,
       CAST(drug AS VARCHAR) AS drug,
       TRY_CAST(started_on AS DATE) AS started_on
FROM medications
WHERE list_contains(def_astct2019_fever_masking_drugs(), CAST(drug AS VARCHAR))
  AND TRY_CAST(started_on AS DATE) IS NOT NULL;
