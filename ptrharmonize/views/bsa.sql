-- patient_bsa: body surface area of each patient.
--
-- BSA (m2) = coefficient x height_cm ^ height_exponent x weight_kg ^ weight_exponent, with the
-- constants of the formula named by definitions `bsa.formula` (default Du Bois):
--   dubois        0.007184 x H^0.725   x W^0.425     (Du Bois & Du Bois 1916; the study)
--   mosteller     (1/60)   x H^0.5     x W^0.5       (Mosteller 1987: sqrt(H x W / 3600))
--   haycock       0.024265 x H^0.3964  x W^0.5378    (Haycock et al. 1978)
--   gehan_george  0.0235   x H^0.42246 x W^0.51456   (Gehan & George 1970)
-- A missing or non-positive height or weight gives a NULL BSA (and `no_bsa` in transfusion_cci).
--
-- Columns: center_id, patient_id, height_cm, weight_kg, bsa_m2, bsa_formula
CREATE OR REPLACE VIEW patient_bsa AS
SELECT p.center_id,
       p.patient_id,
       p.height_cm,
       p.weight_kg,
       CASE
           WHEN p.height_cm > 0 AND p.weight_kg > 0 THEN
               def_bsa_coefficient()
               * pow(p.height_cm, def_bsa_height_exponent())
               * pow(p.weight_kg, def_bsa_weight_exponent())
       END AS bsa_m2,
       def_bsa_formula() AS bsa_formula
FROM patients p
QUALIFY row_number() OVER (PARTITION BY p.center_id, p.patient_id ORDER BY p.source_row) = 1;
