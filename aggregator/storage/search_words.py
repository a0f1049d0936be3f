"""What SQLite's full-text index reads of a text: the letters PostgreSQL's index folds and
SQLite's tokenizer alone would not.

Search must give the same answer on both databases (docs/web.md, Search). PostgreSQL folds a
text with the `unaccent` extension (migration 0030), SQLite with its FTS5 tokenizer
`unicode61 remove_diacritics 2`. The two agree on letters with accents (é, ü, ã, ñ, ç ...) and on
case, and differ on letters that are not a base letter plus an accent in Unicode: `unaccent` makes
ß "ss", æ "ae", ø "o", ł "l", đ "d", þ "th", folds Greek tonos and Cyrillic ё, and reads ©, ®, ¼,
½, ¾ as words (c, r, 1 4 ...), where unicode61 keeps them, and keeps ², ³, ¹ out of words. The
SQLite index therefore reads every headline, lede and body through `index_words` first
(registered as `caulbart_search_words` on every connection by `aggregator.storage.db`), and the
reader's query goes through it too. The table is what PostgreSQL 15's `unaccent.rules` gives for
these characters and unicode61 does not (Latin, IPA, Greek, Cyrillic and Latin-1 signs), found by
running both over every character; tests/e2e/test_search_parity.py checks it still holds.

The index takes a story out by the words this gives for its old text: a change to the table needs a
migration that rebuilds SQLite's index.
"""

from __future__ import annotations

SQL_FUNCTION = "caulbart_search_words"

# Pairs "letter + what it becomes", separated by spaces.
_LETTERS = (
    "Æae Ðd Øo Þth ßss æae ðd øo þth Đd đd Ħh ħh ıi Ĳij ĳij ĸq Ŀl ŀl Łl łl ŉn Ŋn ŋn Œoe œoe "
    "Ŧt ŧt ƀb Ɓb Ƃb ƃb Ƈc ƈc Ɖd Ɗd Ƌd ƌd Ɛe Ƒf ƒf Ɠg ƕhv Ɩi Ɨi Ƙk ƙk ƚl Ɲn ƞn Ƣoi ƣoi Ƥp ƥp "
    "ƫt Ƭt ƭt Ʈt Ʋv Ƴy ƴy Ƶz ƶz Ǆdz ǅdz ǆdz Ǉlj ǈlj ǉlj Ǌnj ǋnj ǌnj Ǡa ǡa Ǥg ǥg Ǳdz ǲdz ǳdz "
    "ȡd Ȥz ȥz ȴl ȵn ȶt ȷj ȸdb ȹqp Ⱥa Ȼc ȼc Ƚl Ⱦt ȿs ɀz Ƀb Ʉu Ɇe ɇe Ɉj ɉj Ɍr ɍr Ɏy ɏy ɓb ɕc ɖd "
    "ɗd ɛe ɟj ɠg ɡg ɢg ɦh ɧh ɨi ɪi ɫl ɬl ɭl ɱm ɲn ɳn ɴn ɶoe ɼr ɽr ɾr ʀr ʂs ʈt ʉu ʋv ʏy ʐz ʑz "
    "ʙb ʛg ʜh ʝj ʟl ʠq ʣdz ʥdz ʦts ʪls ʫlz Ϳϳ Άα Έε Ήη Ίι Όο Ύυ Ώω ΐι Ϊι Ϋυ άα έε ήη ίι ΰυ ϊι "
    "ϋυ όο ύυ ώω Ёе ёе "
)
_SIGNS = {
    "©": " c ",
    "®": " r ",
    "²": " ",
    "³": " ",
    "¹": " ",
    "¼": " 1 4 ",
    "½": " 1 2 ",
    "¾": " 3 4 ",
}
_FOLD = str.maketrans({pair[0]: pair[1:] for pair in _LETTERS.split()} | _SIGNS)


def index_words(text: str | None) -> str:
    """`text` with the letters and signs above replaced as PostgreSQL's `unaccent` replaces them."""
    return (text or "").translate(_FOLD)
