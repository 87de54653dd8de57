"""Onboarding a center: profile its files (`ptrh scan`) and propose a mapping from them
(`ptrh mapping draft`). The vocabulary lives in `schemas/onboarding/lexicon.yaml`."""
