"""Generators: the calibrated paper cohort (`paper.py`), multi-center demo centers in their
own shapes (`centers.py`), scale data and planted defects."""
