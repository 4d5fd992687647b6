"""Azure's one rule for "the same name in another casing": .NET ``OrdinalIgnoreCase``, for every id and name.

ARM compares resource names, resource-group names, management-group names and tag names case-insensitively
the way .NET's ``StringComparison.OrdinalIgnoreCase`` does: each UTF-16 code point is upper-cased by its
simple one-to-one mapping (ICU ``u_toupper``), except U+0131 DOTLESS I and U+017F LONG S, which are left
alone, and the results are compared ordinally (dotnet/runtime, ``src/native/libs/System.Globalization.Native/
pal_casing.c``, ``GlobalizationNative_InitOrdinalCasingPage``). Python's ``str.lower()`` is a different rule:
it maps U+212A KELVIN SIGN to ASCII ``k``, U+212B ANGSTROM SIGN to ``å``, U+2126 OHM SIGN to ``ω``, U+1E9E
CAPITAL SHARP S to ``ß`` and U+03F4 CAPITAL THETA SYMBOL to ``θ``, so ``rg-a\\u212as-prod`` and
``rg-aks-prod`` would be one resource group to Python and two to Azure. Comparing by ``lower()`` lets
whoever can name a resource group in a partly scoped subscription spell their way into scope.

Two functions, for two uses:

* :func:`fold_case` is the rule itself (the upper-cased form; tag rules compare with it);
* :func:`ignore_case_key` is the form to compare, hash, store and send ids and names by: equal keys exactly
  when ``OrdinalIgnoreCase`` says equal, **and** equal to ``str.lower()`` for ASCII text (and for every code
  point but the 27 where ``lower()`` and the rule part ways), so keys persisted before this rule existed
  (journal partitions, policy-order rows, deterministic names) are unchanged for every ASCII id.

Known limits: the Unicode tables are Python's (``unicodedata.unidata_version``), ARM's are its ICU's; the two
can disagree on code points assigned by one Unicode version and not the other. Supplementary-plane letters are
folded per code point here, as .NET 5+ does; .NET Framework left surrogate pairs alone.
"""

from __future__ import annotations

import logging
from functools import lru_cache

logger = logging.getLogger(__name__)

_KEEP_CASE = frozenset("\u0131\u017f")
"""LATIN SMALL LETTER DOTLESS I and LONG S: .NET's ordinal casing deliberately leaves them alone (their simple
uppercase is ASCII ``I``/``S``; mapping them would bring the Turkish-i problem into ordinal comparisons)."""


@lru_cache(maxsize=4096)
def _upper_one_to_one(char: str) -> str:
    """The simple (one-to-one) uppercase of one code point, or the code point itself if it has none.

    Python's ``str.upper`` applies the full mapping, which may produce several characters (``ß`` -> ``SS``);
    the simple mapping never does. Where the full uppercase is longer, the simple mapping is the titlecase
    when that is one character (Greek with ypogegrammeni: ``ᾳ`` -> ``ᾼ``), else there is none.
    """
    if char in _KEEP_CASE:
        return char
    upper = char.upper()
    if len(upper) == 1:
        return upper
    title = char.title()
    return title if len(title) == 1 else char


def fold_case(text: str) -> str:
    """``text`` as Azure compares names: .NET ``OrdinalIgnoreCase`` upper-cases each character by its simple
    one-to-one mapping (ICU ``u_toupper``) and compares the results ordinally. The result has as many code
    points as ``text``."""
    if text.isascii():
        return text.upper()
    return "".join(_upper_one_to_one(char) for char in text)


@lru_cache(maxsize=4096)
def _key_of_char(char: str) -> str:
    """One code point's key: the lower case of its folded form when that lower case folds back to the same
    form (so the key is ``OrdinalIgnoreCase``-equal to the character and unique per class), else the folded
    form itself (KELVIN SIGN stays itself, because its lower case ``k`` folds to ``K``, another class)."""
    folded = _upper_one_to_one(char)
    lowered = folded.lower()
    if len(lowered) == 1 and _upper_one_to_one(lowered) == folded:
        return lowered
    return folded


def ignore_case_key(text: str) -> str:
    """The form to compare, hash, store or send an id or name by, under Azure's ``OrdinalIgnoreCase``.

    * ``ignore_case_key(a) == ignore_case_key(b)`` exactly when ``fold_case(a) == fold_case(b)``;
    * ``fold_case(ignore_case_key(a)) == fold_case(a)``: the key names the same Azure object as ``a``, so it
      may be sent to ARM in place of ``a``;
    * for ASCII text it is ``text.lower()``, so keys stored before this rule are unchanged for ASCII ids.
    """
    if text.isascii():
        return text.lower()
    return "".join(_key_of_char(char) for char in text)


def equal_ignoring_case(left: str, right: str) -> bool:
    """Whether two names are the same under Azure's ``OrdinalIgnoreCase``."""
    return left == right or ignore_case_key(left) == ignore_case_key(right)
