"""The one case-folding rule: how identifiers are compared, stored for lookup and kept unique.

``fold`` is Unicode NFKC case folding (NFKC, full case fold, NFKC again: the composition
Unicode calls NFKC_Casefold, minus its removal of default-ignorable code points). It makes
``İSTANBUL`` and ``i̇stanbul`` one key, ``Straße`` and ``STRASSE`` one key, a Greek final
sigma equal to a medial one, and full-width letters (U+FF21 ...) equal to ASCII ones.

Only Python folds. PostgreSQL's ``lower()`` depends on the database's locale and differs
from Python's for non-ASCII letters, so SQL never lower-cases an identifier: the folded
key is computed here, stored in its own column, and compared with a parameter folded here.
"""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    if text.isascii():  # NFKC leaves ASCII as it is, and its case fold is lower()
        return text.lower()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
