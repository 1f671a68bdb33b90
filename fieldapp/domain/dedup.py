"""Duplicate persons: pairs of person records that are probably one person registered twice.

A pair is proposed when the two records carry the same document (type and number), or when their
names are alike (accents and case ignored; surnames in either order; a surname or a given name
missing; small typos), their dates of birth are the same or close and their nationality is the same.
How sure a pair is depends on how common the name is among the persons compared: two "María
González" born a few days apart are often two women, two "Yusleidy Colmenares" hardly ever.
`find_pairs` never compares every pair: it groups persons by blocking keys (the document; the
nationality, a surname and the birth year or day and month; …) and compares only within a group.
docs/duplicates.md explains the rules, the reasons and the score.
"""

from __future__ import annotations

import functools
import gc
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from rapidfuzz.distance import OSA

from fieldapp.domain.text import doc_key, fold


def N_(message: str) -> str:
    """Mark a message for the catalog; it is translated where it is shown."""
    return message


# Every reason a pair can carry, in the order they are listed on a pair. The codes are stable
# (stored and shown); the labels are English source strings, translated where they are shown.
REASONS = {
    "same_document": N_("Same document type and number"),
    "names_differ": N_("The names differ: check that the document number belongs to both"),
    "same_names": N_("Same names (ignoring accents and capitals)"),
    "similar_names": N_("Similar names: small spelling differences"),
    "surnames_swapped": N_("The same surnames in the other order"),
    "surname_missing": N_("One record lacks a surname that the other has"),
    "given_name_missing": N_("One record lacks a given name that the other has"),
    "same_birth_date": N_("Same date of birth"),
    "close_birth_date": N_("Close dates of birth: day and month swapped, or one digit different"),
    "same_birth_year": N_("The year of birth fits the estimated age"),
    "same_nationality": N_("Same nationality"),
    "common_name": N_("A common name: other persons of this nationality carry it too"),
    "documents_differ": N_("Each record has a document of this type, with different numbers"),
}
_ORDER = {code: i for i, code in enumerate(REASONS)}

THRESHOLD = 50  # the lowest score proposed by default: the same person more likely than not
MAX_BLOCK = 250  # a blocking key shared by more persons is a placeholder ("00000000", 1 January…)

# The score of a pair found by its names is 100 × odds / (1 + odds), where odds = PRIOR × how
# often the same person shows this evidence ÷ how often two different persons show it by chance
# (docs/duplicates.md). PRIOR is the share of persons assumed to be registered twice.
PRIOR = 0.2
_SAME_NAMES = 0.5  # a second registration spells the names the same way (after folding)
_NAME_VARIANT = {"similar_names": 0.6, "surnames_swapped": 0.3, "surname_missing": 0.3,
                 "given_name_missing": 0.1}  # … or with this variation (per typo for similar)
# (how often a second registration shows it, how often two persons born apart show it by chance)
_DATES = {"same_birth_date": (0.45, 1 / 20_000), "close_birth_date": (0.25, 1 / 1_000),
          "same_birth_year": (0.3, 1 / 25)}
_DOCUMENTS_DIFFER = 0.05  # a second registration with another number for the same kind of document
_EXPECTED_MIN = 0.1  # the fewest other persons expected to carry a name; also when none are known
_COMMON_NAME = 1.0  # expected other carriers from which a name is called common
_COMMON_TOKEN, _TYPO_RARITY = 5, 20  # two spellings each carried this often (and the rarer by at
# least one in 20 of the other's carriers) are two names, not a typo
# A shared document is proposed whatever else differs; the score says how much else agrees.
_DOCUMENT_DEDUCTIONS = {"names": 25, "date": 10, "nationality": 5}

# Words that join compound names ("De la Cruz", "María de los Ángeles"): not compared, not keys.
_PARTICLES = frozenset({"de", "del", "la", "las", "los", "da", "das", "do", "dos", "di", "du", "van",
                        "von", "y", "e"})
_NOT_DOCUMENTS = frozenset(("none", ""))


@dataclass(frozen=True)
class Person:
    """One person as central knows it (from a participant registration or an intake)."""

    id: str  # the person id (uuid)
    post: str
    given_names: str = ""
    first_surname: str = ""
    second_surname: str = ""
    birth_date: str = ""  # ISO date or ""
    estimated_age: int | None = None
    nationality: str = ""  # ISO 3166 alpha-2 (or XX stateless, etc.)
    doc_type: str = ""  # code
    doc_number: str = ""
    recorded_on: str = ""  # ISO date the record was made: the day an estimated age was true


@dataclass(frozen=True)
class Pair:
    """Two person ids (a < b) that are probably one person, how sure (0..100) and why."""

    a: str
    b: str
    score: int
    reasons: tuple[str, ...]


@dataclass
class Stats:
    """What a `find_pairs` run did, for the benchmark and the page's footer."""

    persons: int = 0
    blocks: int = 0  # blocking keys shared by two persons or more
    oversized: int = 0  # of those, keys shared by more than MAX_BLOCK persons: skipped
    compared: int = 0  # candidate pairs compared
    proposed: int = 0


# ------------------------------------------------------------------ normalised persons


class _Prepared:
    """A person's names as folded tokens and sound keys, its birth as numbers: computed once."""

    __slots__ = ("person", "given", "given_sound", "surnames", "surnames_sound", "date", "years",
                 "years_set", "nationality", "document")

    def __init__(self, person: Person):
        self.person = person
        self.given, self.given_sound = _words(person.given_names)
        first, second = _words(person.first_surname), _words(person.second_surname)
        self.surnames, self.surnames_sound = first[0] + second[0], first[1] + second[1]
        self.date = _date(person.birth_date)
        self.years = _years(self.date, person.estimated_age, person.recorded_on)
        self.years_set = frozenset(self.years)
        self.nationality = person.nationality.strip().upper()
        key = doc_key(person.doc_number)
        usable = person.doc_type not in _NOT_DOCUMENTS and _usable_document(key)
        self.document = (person.doc_type, key) if usable else None


@functools.lru_cache(maxsize=65_536)  # names repeat: most persons are a few look-ups
def _words(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A name's folded words and how they sound: `_words("De la Cruz") == (("cruz",), ("krus",))`."""
    words = _tokens(name)
    return words, tuple(_sound(w) for w in words)


def _tokens(name: str) -> tuple[str, ...]:
    words = fold(name).split()
    meaningful = tuple(w for w in words if w not in _PARTICLES)
    return meaningful or tuple(words)


_SOUNDS = [  # Spanish spellings that sound alike; applied in order on folded text
    (re.compile(r"ph"), "f"), (re.compile(r"ch"), "0"), (re.compile(r"h"), ""),
    (re.compile(r"ll"), "y"), (re.compile(r"qu?"), "k"), (re.compile(r"c(?=[eiy])"), "s"),
    (re.compile(r"c"), "k"), (re.compile(r"0"), "ch"), (re.compile(r"z"), "s"),
    (re.compile(r"v"), "b"), (re.compile(r"y(?![aeiou])"), "i"), (re.compile(r"(.)\1+"), r"\1"),
]


def _sound(token: str) -> str:
    """A folded token as it sounds in Spanish: `_sound("gonzalez") == _sound("gonsales")`."""
    for pattern, replacement in _SOUNDS:
        token = pattern.sub(replacement, token)
    return token


def _date(text: str) -> tuple[int, int, int] | None:
    parts = text.strip()[:10].split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    year, month, day = (int(p) for p in parts)
    return (year, month, day) if 1 <= month <= 12 and 1 <= day <= 31 else None


def _years(date: tuple[int, int, int] | None, age: int | None, recorded_on: str) -> tuple[int, ...]:
    """The birth years a record allows: its date's year, or the two an estimated age allows."""
    if date is not None:
        return (date[0],)
    recorded = _date(recorded_on)
    if age is None or recorded is None or age < 0:
        return ()
    return (recorded[0] - age - 1, recorded[0] - age)


def _usable_document(key: str) -> bool:
    """Numbers too short or made of one repeated character are placeholders, not documents."""
    return len(key) >= 5 and any(c.isdigit() for c in key) and len(set(key)) > 1


# ------------------------------------------------------------------ blocking


def _keys(p: _Prepared) -> list[tuple]:
    keys: list[tuple] = []
    if p.document is not None:
        keys.append(("document", *p.document))
    if not p.nationality or not p.years or not p.surnames or not p.given:
        return keys
    nat, given, initial = p.nationality, p.given_sound[0], p.given_sound[0][:1]
    day = (min(p.date[1:]), max(p.date[1:])) if p.date is not None else None  # either order
    for surname in set(p.surnames_sound):
        # A shared surname catches swapped and missing surnames and a typo in the other one;
        # the day and month catch a typo in the year.
        keys += [("surname", nat, initial, surname, year) for year in p.years]
        if day:
            keys.append(("surname", nat, initial, surname, day))
    for letter in {s[:1] for s in p.surnames_sound}:  # a typo in a surname, or in the only one
        keys += [("given", nat, given, letter, year) for year in p.years]
        if day:
            keys.append(("given", nat, given, letter, day))
    if len(p.surnames_sound) >= 2:  # another first given name, or none
        keys.append(("surnames", nat, *sorted(p.surnames_sound[:2]), p.years[-1]))
    return keys


def blocking_keys(person: Person) -> list[tuple]:
    """The groups a person is compared within (the benchmark's raw limit times this alone)."""
    return _keys(_Prepared(person))


# ------------------------------------------------------------------ how common names are


class _Population:
    """How often each name is carried among the persons compared, per nationality.

    Without other persons (`compare`), every name counts as rare.
    """

    def __init__(self, prepared: Collection[_Prepared] = ()):
        self.persons: Counter = Counter()
        self.given: Counter = Counter()  # (nat, all given names) and (nat, first given name)
        self.surnames: Counter = Counter()  # (nat, surname)
        self.lengths: Counter = Counter()  # (nat, how many surname words)
        self.tokens: Counter = Counter()  # folded name words, any field, any nationality
        for p in prepared:
            nat = p.nationality
            self.persons[nat] += 1
            if p.given:
                self.given[nat, p.given_sound] += 1
                self.given[nat, p.given_sound[0]] += 1
            for s in set(p.surnames_sound):
                self.surnames[nat, s] += 1
            self.lengths[nat, len(p.surnames)] += 1
            self.tokens.update(p.given + p.surnames)
        self.similar: dict[tuple, int] = {}

    def quality(self, a: str, a_sound: str, b: str, b_sound: str, given: bool) -> int:
        """How alike two name words are (remembered: names repeat, so mostly a look-up)."""
        key = (a, a_sound, b, b_sound, given)
        found = self.similar.get(key)
        if found is None:
            found = self.similar[key] = self._quality(a, a_sound, b, b_sound, given)
        return found

    def _quality(self, a: str, a_sound: str, b: str, b_sound: str, given: bool) -> int:
        if a == b:
            return _EXACT
        if given and _gendered(a, b):
            return 0  # Mario and María, Daniel and Daniela: a brother and a sister, not a typo
        if a_sound == b_sound:
            return _SIMILAR
        shorter = min(len(a), len(b))
        budget = 0 if shorter < 4 else 1 if shorter < 8 else 2
        if not budget or self._two_names(a, b):
            return 0
        distance = min(OSA.distance(a, b, score_cutoff=budget),
                       OSA.distance(a_sound, b_sound, score_cutoff=budget))
        return _SIMILAR if distance <= budget else 0

    def _two_names(self, a: str, b: str) -> bool:
        """Rojas and Rosas, Andrés and Andrea: two spellings both carried by many are two names;
        a slip of the pen is much rarer than the name it misspells."""
        fewer, more = sorted((self.tokens[a], self.tokens[b]))
        return fewer >= _COMMON_TOKEN and fewer * _TYPO_RARITY >= more

    def expected(self, p: _Prepared, q: _Prepared, surnames: list[tuple[str, str]]) -> float:
        """How many other persons of the nationality (the pair left out) are expected to carry the
        names the pair shares: given names as counted, times each surname's share."""
        nat = p.nationality
        total = self.persons[nat] - 2
        if total <= 0:
            return _EXPECTED_MIN
        if len(p.given) == len(q.given):
            keys = [(nat, p.given_sound), (nat, q.given_sound)]
        else:  # the shorter given names, or all who start with it ("María" and "María José")
            shorter = p if len(p.given) < len(q.given) else q
            keys = [(nat, shorter.given_sound if len(shorter.given) > 1 else shorter.given_sound[0])]
        expected = float(max(self.given[k] - sum(k[1] in (r.given_sound, r.given_sound[0])
                                                 for r in (p, q)) for k in keys))
        for x, y in surnames:
            carriers = max(self.surnames[nat, s] - (s in p.surnames_sound) - (s in q.surnames_sound)
                           for s in (x, y))
            expected *= carriers / total
        if len(p.surnames) == len(q.surnames):  # "Carlos Hernández" is not "Carlos Hernández Díaz"
            length = len(p.surnames)
            expected *= (self.lengths[nat, length] - 2) / total
        return max(_EXPECTED_MIN, expected)


# ------------------------------------------------------------------ comparing two persons

_EXACT, _SIMILAR = 2, 1


def _gendered(a: str, b: str) -> bool:
    """The masculine and feminine forms of one given name: `_gendered("daniel", "daniela")`."""
    if len(a) == len(b):
        return a[:-1] == b[:-1] and {a[-1], b[-1]} == {"a", "o"}
    return a + "a" == b or b + "a" == a


def _align(xs, xs_sound, ys, ys_sound, population: _Population, given: bool):
    """Match every word of the shorter list to a distinct word of the other list.

    Returns (typos, in_order, matched sound pairs), or None when some word has no match.
    """
    if xs == ys:
        return 0, True, list(zip(xs_sound, ys_sound, strict=True))
    if len(xs) > len(ys):
        xs, xs_sound, ys, ys_sound = ys, ys_sound, xs, xs_sound
    used: list[int] = []
    typos = 0
    for x, x_sound in zip(xs, xs_sound, strict=True):
        best, best_quality = -1, 0
        for j, (y, y_sound) in enumerate(zip(ys, ys_sound, strict=True)):
            if j in used:
                continue
            quality = population.quality(x, x_sound, y, y_sound, given)
            if quality > best_quality:
                best, best_quality = j, quality
                if quality == _EXACT:
                    break
        if best < 0:
            return None
        used.append(best)
        typos += best_quality == _SIMILAR
    return typos, used == sorted(used), [(x, ys_sound[j]) for x, j in zip(xs_sound, used, strict=True)]


def _names(p: _Prepared, q: _Prepared, population: _Population):
    """The name reasons, how often a second registration shows them, and the matched surnames;
    None when the names are not alike."""
    if not (p.given and q.given and p.surnames and q.surnames):
        return None
    joined = "".join(p.given) == "".join(q.given)  # "Mariajosé" and "María José"
    given = (0, True, []) if joined else _align(p.given, p.given_sound, q.given, q.given_sound,
                                                population, True)
    if given is None:
        return None
    surnames = _align(p.surnames, p.surnames_sound, q.surnames, q.surnames_sound, population, False)
    if surnames is None:
        return None
    reasons: list[str] = []
    likelihood = _SAME_NAMES
    typos = given[0] + surnames[0]
    if typos:
        reasons.append("similar_names")
        likelihood *= _NAME_VARIANT["similar_names"] ** typos
    if not surnames[1]:
        reasons.append("surnames_swapped")
    if len(p.surnames) != len(q.surnames):
        reasons.append("surname_missing")
    if len(p.given) != len(q.given) and not joined:
        reasons.append("given_name_missing")
    for reason in reasons[bool(typos):]:
        likelihood *= _NAME_VARIANT[reason]
    return (reasons or ["same_names"]), likelihood, surnames[2]


def _date_reason(p: _Prepared, q: _Prepared) -> str | None:
    if p.date is not None and q.date is not None:
        return _close_dates(p.date, q.date)
    if p.years and q.years and not p.years_set.isdisjoint(q.years):
        return "same_birth_year"
    return None


def _close_dates(a: tuple[int, int, int], b: tuple[int, int, int]) -> str | None:
    """Same date; or a typist's slip: day and month swapped, one digit changed or two swapped."""
    if a == b:
        return "same_birth_date"
    if a[0] != b[0]:  # the year one off and the rest the same; never years apart
        return "close_birth_date" if a[1:] == b[1:] and abs(a[0] - b[0]) == 1 else None
    if a[1] == b[2] and a[2] == b[1]:
        return "close_birth_date"
    # Month and day as four digits: one changed, or two neighbours swapped, is one edit.
    x, y = f"{a[1]:02d}{a[2]:02d}", f"{b[1]:02d}{b[2]:02d}"
    return "close_birth_date" if OSA.distance(x, y, score_cutoff=1) <= 1 else None


def _documents_differ(p: _Prepared, q: _Prepared) -> bool:
    """Both have a document of one type, with numbers more than one typo apart."""
    if p.document is None or q.document is None or p.document[0] != q.document[0]:
        return False
    return OSA.distance(p.document[1], q.document[1], score_cutoff=1) > 1


def _verdict(p: _Prepared, q: _Prepared, population: _Population) -> tuple[int, list[str]] | None:
    same_document = p.document is not None and p.document == q.document
    same_nationality = bool(p.nationality) and p.nationality == q.nationality
    date = _date_reason(p, q)
    if not same_document and not (same_nationality and date):
        return None  # cheap checks first: most candidates stop here
    names = _names(p, q, population)
    if same_document:
        reasons = ["same_document"] + (names[0] if names else ["names_differ"])
        score = 100 - sum(points for what, points in _DOCUMENT_DEDUCTIONS.items()
                          if not {"names": names, "date": date, "nationality": same_nationality}[what])
    elif names is None:
        return None
    else:
        reasons, likelihood, surnames = names
        expected = population.expected(p, q, surnames)
        seen, by_chance = _DATES[date]
        odds = PRIOR * likelihood * seen / (expected * by_chance)
        if _documents_differ(p, q):
            odds *= _DOCUMENTS_DIFFER
            reasons = [*reasons, "documents_differ"]
        if expected >= _COMMON_NAME:
            reasons = [*reasons, "common_name"]
        score = round(100 * odds / (1 + odds))
    if date:
        reasons.append(date)
    if same_nationality:
        reasons.append("same_nationality")
    return score, sorted(reasons, key=_ORDER.__getitem__)


def _pair(p: _Prepared, q: _Prepared, population: _Population, threshold: int) -> Pair | None:
    found = _verdict(p, q, population)
    if found is None or found[0] < threshold:
        return None
    a, b = sorted((p.person.id, q.person.id))
    return Pair(a, b, found[0], tuple(found[1]))


def compare(a: Person, b: Person, *, threshold: int = THRESHOLD) -> Pair | None:
    """The verdict on one pair, as if their names were rare (no other persons are known):
    `compare(maria, maria_again).reasons[0] == "same_document"`."""
    if a.id == b.id:
        return None
    return _pair(_Prepared(a), _Prepared(b), _Population(), threshold)


def find_pairs(people: Iterable[Person], *, skip: Collection[tuple[str, str]] = (),
               threshold: int = THRESHOLD, stats: Stats | None = None) -> list[Pair]:
    """Pairs that are probably one person, best first: `find_pairs([p, p_again]) == [Pair(…)]`.

    `skip` holds pairs already judged (merged, or "not the same person"), in either order.
    """
    # Hundreds of thousands of small objects that all live until the end: the cyclic garbage
    # collector would walk them again and again (four times the whole run at 100,000 persons)
    # and find nothing to free. Reference counting still frees everything as usual.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _find_pairs(people, skip, threshold, stats if stats is not None else Stats())
    finally:
        if collecting:
            gc.enable()


def _find_pairs(people: Iterable[Person], skip: Collection[tuple[str, str]], threshold: int,
                stats: Stats) -> list[Pair]:
    prepared = [_Prepared(p) for p in people]
    stats.persons = n = len(prepared)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, p in enumerate(prepared):
        for key in _keys(p):
            groups[key].append(i)
    candidates: set[int] = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        stats.blocks += 1
        if len(members) > MAX_BLOCK:
            stats.oversized += 1
        elif len(members) == 2:  # most groups
            candidates.add(members[0] * n + members[1])
        else:  # members are in increasing order: each person adds a key once
            candidates.update(i * n + j for i, j in itertools.combinations(members, 2))
    judged = {(min(a, b), max(a, b)) for a, b in skip}
    population = _Population(prepared)
    pairs: list[Pair] = []
    for candidate in candidates:  # the order does not matter: the pairs are sorted at the end
        p, q = prepared[candidate // n], prepared[candidate % n]
        ids = (p.person.id, q.person.id) if p.person.id < q.person.id else (q.person.id, p.person.id)
        if ids[0] == ids[1] or ids in judged:
            continue
        stats.compared += 1
        pair = _pair(p, q, population, threshold)
        if pair is not None:
            pairs.append(pair)
    pairs.sort(key=lambda pair: (-pair.score, pair.a, pair.b))
    stats.proposed = len(pairs)
    return pairs
