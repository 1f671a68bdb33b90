"""Benchmark: the duplicate-person finder over N persons, with planted duplicates.

    python -m bench.dedup [--sizes 10000 100000] [--runs 3] [--duplicates 0.05] [--seed N]

For every size it makes N persons (deterministic per seed, not timed) as the posts register them:
Venezuelan, Colombian, Haitian, Ecuadorian, Peruvian, Cuban and Central American names with accents,
compound given names and surnames, dates of birth or estimated ages, documents in their national
formats, spread over 12 posts. A share of them (`--duplicates`, 5% by default) is registered a second
time, at another post (one in ten at the same post), with the variations that happen at a desk:
accents or capitals lost, surnames in the other order, a surname or a given name left out, a typo or
a sound-alike spelling, day and month swapped, one digit of the date mistyped, an estimated age
instead of the date, the document typed with other separators or not at all. Every planted copy is one
the rules say must be found (docs/duplicates.md), so recall is the share of them proposed and
precision the share of proposals that are planted pairs: the rest are real-looking different people
the finder took for one.

Then, `--runs` times, it times `dedup.find_pairs` over the persons, and one plain pass computing
only the blocking keys of every person (`dedup.blocking_keys`): the raw limit, measured in the same
run. It prints a Markdown table of the medians.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import unicodedata
from dataclasses import dataclass, replace
from datetime import date, timedelta

from bench.intake import (
    GIVEN_FEMALE,
    GIVEN_HAITIAN_F,
    GIVEN_HAITIAN_M,
    GIVEN_MALE,
    NATIONALITIES,
    SURNAMES,
    SURNAMES_HAITIAN,
    _doc_number,
    _log,
    _pick,
    machine,
    revision,
)
from fieldapp.domain import dedup
from fieldapp.domain.dedup import Person
from fieldapp.domain.text import doc_key

POSTS = [f"POST-{i}" for i in range(1, 13)]
TODAY = date(2026, 11, 21)  # fixed, so a seed always makes the same persons
DOC_TYPES = (["passport", "national_id", "birth_certificate", "refugee_document", "other", "none"],
             [22, 45, 3, 3, 4, 15])


@dataclass
class Population:
    persons: list[Person]
    planted: set[tuple[str, str]]  # (a, b) with a < b
    variants: dict[str, int]  # how many planted copies carry each variation


class Generator:
    """Persons as the posts register them, and planted second registrations of some of them."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.serial = 0
        self.documents: set[tuple[str, str]] = set()  # a real document number names one person

    def _id(self) -> str:
        self.serial += 1
        return f"{self.rng.getrandbits(96):024x}-{self.serial:07d}"

    def person(self) -> Person:
        rng = self.rng
        nationality = _pick(rng, NATIONALITIES)
        female = rng.random() < 0.5
        if nationality == "HT" and rng.random() < 0.8:
            given = _pick(rng, GIVEN_HAITIAN_F if female else GIVEN_HAITIAN_M)
            first, second = _pick(rng, SURNAMES_HAITIAN), ""
        else:
            given = _pick(rng, GIVEN_FEMALE if female else GIVEN_MALE)
            first = _pick(rng, SURNAMES)
            second = _pick(rng, SURNAMES) if rng.random() < 0.85 else ""
        recorded = TODAY - timedelta(days=rng.randint(0, 730))
        age = rng.choices([rng.randint(0, 17), rng.randint(18, 59), rng.randint(60, 85)], [20, 72, 8])[0]
        birth = recorded - timedelta(days=age * 365 + rng.randint(0, 364))
        known = rng.random() < 0.88
        doc_type, number = rng.choices(*DOC_TYPES)[0], ""
        while doc_type != "none" and (not number or (doc_type, doc_key(number)) in self.documents):
            number = _doc_number(rng, doc_type, nationality)
        self.documents.add((doc_type, doc_key(number)))
        return Person(
            id=self._id(), post=rng.choice(POSTS), given_names=given, first_surname=first,
            second_surname=second, birth_date=birth.isoformat() if known else "",
            estimated_age=None if known else age, nationality=nationality, doc_type=doc_type,
            doc_number=number,
            recorded_on=recorded.isoformat(),
        )

    def again(self, p: Person) -> tuple[Person, list[str]]:
        """The same person registered a second time, with the variations a desk introduces."""
        rng = self.rng
        post = p.post if rng.random() < 0.1 else rng.choice([x for x in POSTS if x != p.post])
        recorded = date.fromisoformat(p.recorded_on) + timedelta(days=rng.randint(0, 200))
        q = replace(p, id=self._id(), post=post, recorded_on=recorded.isoformat())
        done: list[str] = []
        if p.doc_type != "none" and rng.random() < 0.5:  # the document decides alone
            q = replace(q, doc_number=_reformat_document(rng, p.doc_number))
            done.append("document reformatted")
            names = rng.sample(NAME_VARIANTS, rng.choice([1, 2]))
            dates = rng.choice(DATE_VARIANTS)
        else:  # the names, date and nationality decide
            if p.doc_type != "none" and rng.random() < 0.7:
                q = replace(q, doc_type="none", doc_number="")
                done.append("document left out")
            names = rng.sample(NAME_VARIANTS, 1)
            if rng.random() < 0.25:
                names = [*names, "accents lost"] if names[0] != "accents lost" else names
            dates = rng.choice(DATE_VARIANTS)
        for variant in names:
            changed = NAME_CHANGES[variant](rng, q)
            if changed is not None:
                q = changed
                done.append(variant)
        changed = DATE_CHANGES[dates](rng, q, p)
        if changed is not None:
            q = changed
            done.append(dates)
        return q, done


def _reformat_document(rng: random.Random, number: str) -> str:
    plain = "".join(c for c in number if c.isalnum())
    style = rng.choice(["plain", "dashes", "spaces", "lower"])
    if style == "plain":
        return plain
    if style == "lower":
        return number.lower()
    sep = "-" if style == "dashes" else " "
    return sep.join(plain[i:i + 3] for i in range(0, len(plain), 3))


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def _accents_lost(rng, q):
    if rng.random() < 0.5:
        return replace(q, given_names=_strip_accents(q.given_names).upper(),
                       first_surname=_strip_accents(q.first_surname).upper(),
                       second_surname=_strip_accents(q.second_surname).upper())
    return replace(q, given_names=_strip_accents(q.given_names).lower(),
                   first_surname=_strip_accents(q.first_surname),
                   second_surname=_strip_accents(q.second_surname).lower())


def _surnames_swapped(rng, q):
    if not q.second_surname:
        return None
    return replace(q, first_surname=q.second_surname, second_surname=q.first_surname)


def _surname_missing(rng, q):
    if not q.second_surname:
        return None
    return replace(q, second_surname="")


def _given_name_missing(rng, q):
    words = q.given_names.split()
    if len(words) < 2:
        return None
    return replace(q, given_names=words[0])


SOUND_ALIKE = [("z", "s"), ("s", "z"), ("v", "b"), ("b", "v"), ("ll", "y"), ("y", "i"), ("i", "y")]


def _typo(rng, q):
    """One slip in one name of at least five letters: a letter changed, dropped, doubled or two
    swapped, or a sound-alike spelling."""
    fields = [f for f in ("given_names", "first_surname", "second_surname")
              if len(getattr(q, f).split()[0] if getattr(q, f) else "") >= 5]
    if not fields:
        return None
    name = rng.choice(fields)
    words = getattr(q, name).split()
    word = _strip_accents(words[0]) if rng.random() < 0.5 else words[0]
    kind = rng.choice(["sound", "change", "drop", "double", "swap"])
    i = rng.randint(1, len(word) - 2)
    if kind == "sound":
        pairs = [(a, b) for a, b in SOUND_ALIKE if a in word.lower()]
        if pairs:
            a, b = rng.choice(pairs)
            word = word.lower().replace(a, b, 1).capitalize()
        else:
            kind = "change"
    if kind == "change":
        word = word[:i] + rng.choice("aeioulnrst".replace(word[i].lower(), "")) + word[i + 1:]
    elif kind == "drop":
        word = word[:i] + word[i + 1:]
    elif kind == "double":
        word = word[:i] + word[i] + word[i:]
    elif kind == "swap":
        word = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return replace(q, **{name: " ".join([word, *words[1:]])})


NAME_CHANGES = {
    "accents lost": _accents_lost, "surnames swapped": _surnames_swapped,
    "surname missing": _surname_missing, "given name missing": _given_name_missing, "typo": _typo,
}
NAME_VARIANTS = list(NAME_CHANGES)


def _same_date(rng, q, p):
    return None


def _day_month_swapped(rng, q, p):
    if not p.birth_date:
        return None
    born = date.fromisoformat(p.birth_date)
    if born.day > 12 or born.day == born.month:
        return None
    return replace(q, birth_date=f"{born.year:04d}-{born.day:02d}-{born.month:02d}")


def _digit_off(rng, q, p):
    if not p.birth_date:
        return None
    born = date.fromisoformat(p.birth_date)
    for _ in range(20):
        if rng.random() < 0.3:
            candidate = (born.year + rng.choice([-1, 1]), born.month, born.day)
        else:
            day = f"{born.day:02d}"
            i = rng.randint(0, 1)
            day = day[:i] + str((int(day[i]) + rng.choice([-1, 1])) % 10) + day[i + 1:]
            candidate = (born.year, born.month, int(day))
        try:
            return replace(q, birth_date=date(*candidate).isoformat())
        except ValueError:
            continue
    return None


def _estimated_age(rng, q, p):
    if not p.birth_date:
        return None
    born, recorded = date.fromisoformat(p.birth_date), date.fromisoformat(q.recorded_on)
    age = recorded.year - born.year - ((recorded.month, recorded.day) < (born.month, born.day))
    return replace(q, birth_date="", estimated_age=age)


DATE_CHANGES = {
    "same date": _same_date, "day and month swapped": _day_month_swapped,
    "a digit of the date": _digit_off, "estimated age": _estimated_age,
}
DATE_VARIANTS = ["same date", "same date", "day and month swapped", "a digit of the date",
                 "estimated age"]


def population(size: int, share: float, seed: int) -> Population:
    """`size` persons in all, of which `share` are second registrations of another one."""
    gen = Generator(seed)
    originals = [gen.person() for _ in range(round(size * (1 - share)))]
    persons = list(originals)
    planted: set[tuple[str, str]] = set()
    variants: dict[str, int] = {}
    for p in gen.rng.sample(originals, size - len(originals)):
        q, done = gen.again(p)
        persons.append(q)
        planted.add((min(p.id, q.id), max(p.id, q.id)))
        for variant in done:
            variants[variant] = variants.get(variant, 0) + 1
    gen.rng.shuffle(persons)
    return Population(persons, planted, variants)


def raw_pass(persons: list[Person]) -> float:
    started = time.perf_counter()
    for p in persons:
        dedup.blocking_keys(p)
    return time.perf_counter() - started


def timed_find(persons: list[Person]) -> tuple[float, float, list[dedup.Pair], dedup.Stats]:
    """Wall-clock and CPU seconds of one `find_pairs` (CPU time shows what a busy machine hides)."""
    stats = dedup.Stats()
    started, cpu = time.perf_counter(), time.process_time()
    pairs = dedup.find_pairs(persons, stats=stats)
    return time.perf_counter() - started, time.process_time() - cpu, pairs, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duplicates", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=20261121)
    args = parser.parse_args(argv)

    med = statistics.median
    rows = []
    for size in args.sizes:
        made = time.perf_counter()
        pop = population(size, args.duplicates, args.seed + size)
        _log(f"[{size:,}] {len(pop.persons):,} persons, {len(pop.planted):,} planted duplicates, "
             f"made in {time.perf_counter() - made:.1f} s")
        times, cpus, raws = [], [], []
        for run in range(args.runs):
            raws.append(raw_pass(pop.persons))
            seconds, cpu, pairs, stats = timed_find(pop.persons)
            times.append(seconds)
            cpus.append(cpu)
            _log(f"[{size:,}] run {run + 1}: find_pairs {seconds:.2f} s, keys only {raws[-1]:.2f} s, "
                 f"{stats.compared:,} compared, {stats.proposed:,} proposed")
        found = {(p.a, p.b) for p in pairs}
        hits = found & pop.planted
        persons = {p.id: p for p in pop.persons}
        for a, b in sorted(pop.planted - found)[:10]:
            _log(f"  missed: {_show(persons[a])}  |  {_show(persons[b])}")
        for pair in [p for p in pairs if (p.a, p.b) not in pop.planted][:10]:
            _log(f"  extra ({pair.score}, {','.join(pair.reasons)}): {_show(persons[pair.a])}  |  "
                 f"{_show(persons[pair.b])}")
        rows.append({
            "size": size, "seconds": med(times), "cpu": med(cpus), "raw": med(raws), "times": times,
            "compared": stats.compared, "blocks": stats.blocks, "oversized": stats.oversized,
            "proposed": len(pairs), "planted": len(pop.planted), "hits": len(hits),
            "variants": pop.variants,
        })

    print(f"| persons | seconds (median of {args.runs}) | CPU s | keys only, s | ratio | candidate "
          "pairs compared | pairs proposed | planted duplicates | recall | precision |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        recall = r["hits"] / r["planted"] if r["planted"] else 1.0
        precision = r["hits"] / r["proposed"] if r["proposed"] else 1.0
        print(f"| {r['size']:,} | {r['seconds']:.2f} | {r['cpu']:.2f} | {r['raw']:.2f} "
              f"| {r['seconds'] / r['raw']:.1f}× "
              f"| {r['compared']:,} | {r['proposed']:,} | {r['planted']:,} | {recall:.1%} "
              f"| {precision:.1%} |")
    print()
    for r in rows:
        runs = ", ".join(f"{t:.2f}" for t in r["times"])
        print(f"- {r['size']:,}: runs {runs} s; {r['blocks']:,} shared blocking keys, "
              f"{r['oversized']} over {dedup.MAX_BLOCK} persons (skipped)")
    last = rows[-1]
    verdict = "met" if last["seconds"] < 30 else "MISSED"
    print(f"\n{last['size']:,} persons in {last['seconds']:.1f} s (goal < 30 s: {verdict})")
    print("planted variations (" + f"{rows[-1]['size']:,}" + " persons): " + ", ".join(
        f"{k} {v:,}" for k, v in sorted(last["variants"].items(), key=lambda kv: -kv[1])))
    print(f"fieldapp commit: {revision()}")
    print(f"machine: {machine()}")
    return 0


def _show(p: Person) -> str:
    born = p.birth_date or f"~{p.estimated_age}y@{p.recorded_on[:4]}"
    return (f"{p.given_names} / {p.first_surname} / {p.second_surname} {born} {p.nationality} "
            f"{p.doc_type}:{p.doc_number}")


if __name__ == "__main__":
    sys.exit(main())
