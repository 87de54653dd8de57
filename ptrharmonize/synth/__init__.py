"""Generators: the calibrated paper cohort (`paper.py`), demo centers whose shapes are their
mappings (`centers.py` draws the truth; `invert.py`, `render.py`, `writers.py` write it the way
a mapping reads it), registry-scale extracts (`scale.py`) and the one defect planter
(`defects.py`) that the tests, the demo and the scale generator share."""
