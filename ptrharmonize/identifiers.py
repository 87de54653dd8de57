"""Detectors for direct identifiers that a pattern alone cannot tell (schemas/phi.yaml `validator:`).

A national id with a check digit is recognised by its check digit, not by its length: nine digits
are a Dutch BSN only when they pass the 11-proof, sixteen characters an Italian codice fiscale only
when the last letter is the check character of the fifteen before it. The check-digit algorithms
are python-stdnum's (maintained, one module per country); telephone numbers are recognised by
Google's libphonenumber data (the `phonenumbers` package) for the registries' countries; person
names by a given-name list shipped with the schemas (schemas/phi_first_names.txt) followed by a
capitalised word, or a title followed by one. No model and no download: a Presidio or scrubadub
name recogniser needs a spaCy model, which a plain pip install does not bring.

Each detector takes a cell's text and says whether it holds such an identifier. They run on the
distinct values that a cheap regular expression (`candidates:`) lets through, so a registry of
millions of rows costs one Python call per distinct suspicious value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from .paths import schemas_dir

# Regions whose local (non +international) phone formats are recognised.
PHONE_REGIONS = ("NL", "IT", "DE", "FR", "GB", "US", "CN", "ES", "BE", "CH", "AT")

_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9](?:[ .\-/]?[0-9]){7,16}(?:[ .\-]?[0-9Xx])?(?![0-9A-Za-z])")
_NIR = re.compile(r"(?<![0-9])[12][ .]?[0-9]{2}[ .]?[0-9]{2}[ .]?(?:[0-9]{2}|2[ABab])[ .]?[0-9]{3}[ .]?[0-9]{3}"
                  r"[ .]?[0-9]{2}(?![0-9])")
_CODICE_FISCALE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{6}[0-9LMNP-Vlmnp-v]{2}[A-Za-z][0-9LMNP-Vlmnp-v]{2}"
                             r"[A-Za-z][0-9LMNP-Vlmnp-v]{3}[A-Za-z](?![A-Za-z0-9])")


# Dates and times as clinical files write them (01-03-2019, 2019/03/01, 06:00): digit runs that a
# numbering plan can also read as a telephone number ("01-03-2019 06:00" is a valid Dutch number).
# A mis-formatted date is a type issue for the nurse to fix, not an identifier to redact.
_DATE_OR_TIME = re.compile(r"\b\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}\b|\b\d{1,2}:\d{2}(?::\d{2})?\b")


@lru_cache(maxsize=1)
def _stdnum() -> tuple:
    """python-stdnum's modules, imported once (an import statement per call was ~half of the
    check's time on a column of codes)."""
    from stdnum.cn import ric
    from stdnum.de import idnr
    from stdnum.fr import nir
    from stdnum.gb import nhs
    from stdnum.it import codicefiscale
    from stdnum.nl import bsn

    return bsn, nhs, idnr, ric, nir, codicefiscale


def national_id(text: str) -> bool:
    """A check-digit-valid national id of NL (BSN), IT (codice fiscale), DE (Steuer-ID), FR (NIR),
    UK (NHS number) or CN (resident id) anywhere in `text`."""
    bsn, nhs, idnr, ric, nir, codicefiscale = _stdnum()
    for m in _CODICE_FISCALE.finditer(text):
        if codicefiscale.is_valid(m.group().upper()):
            return True
    for m in _NIR.finditer(text):
        if nir.is_valid(re.sub(r"[ .]", "", m.group()).upper()):
            return True
    for m in _DIGIT_RUN.finditer(_DATE_OR_TIME.sub(" ", text)):
        raw = m.group()
        digits = re.sub(r"[ .\-/]", "", raw)
        n = len(digits)
        checks: list[Callable[[str], bool]] = []
        if n == 9:
            checks = [bsn.is_valid]
        elif n == 10:
            checks = [nhs.is_valid]
        elif n == 11:
            checks = [idnr.is_valid]
        elif n == 18:
            checks = [ric.is_valid]
        if any(check(digits.upper()) for check in checks):
            return True
    return False


def phone(text: str) -> bool:
    """A telephone number valid in one of PHONE_REGIONS (or in international form) in `text`,
    dates and times aside."""
    from phonenumbers import Leniency

    text = _DATE_OR_TIME.sub(" ", text)
    if not any(ch.isdigit() for ch in text):
        return False
    for _ in _any_region_matcher()(text, PHONE_REGIONS[0], leniency=Leniency.VALID):
        return True
    return False


def _rejects(matcher: object, ch: str) -> bool:
    """The matcher's test of the character next to a candidate (a Latin letter, '%' or a currency
    sign rejects it), answered directly for ASCII: Basic Latin's letters are A-Z and a-z, its
    only currency sign '$'; the library's Unicode-block lookup for anything else."""
    if ch.isascii():
        return ch.isalpha() or ch in "%$"
    return matcher._is_invalid_punctuation_symbol(ch) or matcher._is_latin_letter(ch)  # type: ignore[attr-defined]


@lru_cache(maxsize=1)
def _any_region_matcher() -> type:
    """libphonenumber's matcher, trying every region of PHONE_REGIONS on each candidate it parses.

    The matcher's walk over a text (its candidate spans, the date, time-stamp, bracket and
    Latin-letter checks, its retry count) does not depend on the region: only the final parse
    does. So "a match in some region" is the same as one walk that parses each candidate in every
    region in turn (the first region that verifies wins), instead of eleven walks that repeat
    everything but the parse: ~10x less per cell on identifier-like codes ('LEI-T00001-001'),
    which are most of the cells this runs on. tests/test_phi.py compares it with the plain
    per-region matcher."""
    from phonenumbers import Leniency, NumberParseException, parse
    from phonenumbers import phonenumbermatcher as pm

    class AnyRegionMatcher(pm.PhoneNumberMatcher):
        # PhoneNumberMatcher._parse_and_verify (phonenumbers 9.x), with the parse and verify step
        # repeated for each region; the checks before it are the library's, done once.
        def _parse_and_verify(self, candidate: str, offset: int) -> object:
            if not pm.fullmatch(pm._MATCHING_BRACKETS, candidate) or pm._PUB_PAGES.search(candidate):
                return None
            if self.leniency >= Leniency.VALID:
                if offset > 0 and not pm._LEAD_PATTERN.match(candidate) and _rejects(self, self.text[offset - 1]):
                    return None
                last = offset + len(candidate)
                if last < len(self.text) and _rejects(self, self.text[last]):
                    return None
            for region in PHONE_REGIONS:
                try:
                    numobj = parse(candidate, region, keep_raw_input=True)
                except NumberParseException:
                    continue
                if pm._verify(self.leniency, numobj, candidate, self):
                    return pm.PhoneNumberMatch(offset, candidate, numobj)
            return None

    return AnyRegionMatcher


@lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    path = schemas_dir() / "phi_first_names.txt"
    if not path.is_file():
        return frozenset()
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(ln.strip().casefold() for ln in lines if ln.strip() and not ln.startswith("#"))


_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_TITLES = {"mr", "mrs", "ms", "miss", "dr", "prof", "sig", "sig.ra", "signor", "signora", "herr", "frau",
           "m", "mme", "mlle", "monsieur", "madame", "dhr", "mevr", "sr", "sra", "don", "dott", "dott.ssa"}
# Capitalised word pairs that are clinical terms, not people.
_NOT_NAMES = {("ann", "arbor")}


def person_name(text: str) -> bool:
    """A given name of schemas/phi_first_names.txt followed by a capitalised word ('Maria Rossi'),
    or a title followed by a capitalised word ('Dr. Smith', 'Sig.ra Bianchi')."""
    names = first_names()
    words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
    for (w, _, end), (nxt, start2, _) in zip(words, words[1:], strict=False):
        gap = text[end:start2]
        if len(gap) > 3 or not nxt[:1].isupper() or len(nxt) < 2:
            continue
        low = w.casefold()
        if w[:1].isupper() and low in names and (low, nxt.casefold()) not in _NOT_NAMES and gap.strip() == "":
            return True
        if low in _TITLES and gap.strip() in ("", ".") and w[:1].isupper():
            return True
    return False


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "national_id": national_id,
    "phone": phone,
    "person_name": person_name,
}
