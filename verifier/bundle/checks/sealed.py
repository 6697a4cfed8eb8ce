"""The sealed-openings check: each sealed record's openings match its commitments."""

from __future__ import annotations

from verifier.bundle.format import OPENINGS
from verifier.bundle.model import EvidenceBundle, Record, record_place
from verifier.canonical import CanonicalError, parse_strict_json
from verifier.report_model import CheckList, Problems
from verifier.sealed import OpeningError, open_record

T_OPENINGS = ("密封内容开启", "sealed openings")


def check_openings(b: EvidenceBundle, out: CheckList, records: list[Record]) -> None:
    """Each committed record's openings must match its commitments (verifier/sealed.py).

    The committed record verifies against its event hash without them; with them, each
    value is the one committed to, so a backend cannot swap an opened value (a bidder,
    a price) after the fact. Sets each record's ``view`` to the record as posted.

    Sealed records (the sealed chain) must all be opened once ``openings.jsonl`` is there.
    Records of open events with confidential fields (a complainant, the committee) are
    opened only for the readers who may see them (docs/formats.md): withheld, they still
    verify as commitments, and the rules see them without those values.
    """
    sealed = {r.obj.get("index"): r for r in records if r.sealed}
    confidential = {
        r.obj.get("index"): r for r in records if not r.sealed and "commitments" in r.obj
    }
    committed = sealed | confidential
    if OPENINGS not in b.archive.members:
        for r in committed.values():
            r.unopened = True
        if sealed:
            out.add(
                "sealed_openings",
                T_OPENINGS,
                "warn",
                f"{len(sealed)} sealed record(s) but no {OPENINGS}: they verify as "
                "commitments only, and the rules see them without their sealed values",
                f"{len(sealed)} 条密封记录未附 {OPENINGS}：仅核验其承诺值，规则核查不含密封内容",
                required=False,
            )
        elif confidential:
            _withheld(out, 0, 0, len(confidential))
        return
    problems = Problems()
    seen: set[int] = set()
    for n, line in enumerate(b.member_lines(OPENINGS, problems), 1):
        try:
            doc = parse_strict_json(line or b"")
            if not isinstance(doc, dict) or set(doc) != {"index", "openings"}:
                raise CanonicalError("$", 'want {"index", "openings"}')
        except CanonicalError as e:
            problems.append(f"{OPENINGS} line {n}: malformed ({e})")
            continue
        idx = doc["index"]
        found = committed.get(idx) if isinstance(idx, int) else None
        if found is None or idx in seen:
            problems.append(
                f"{OPENINGS} line {n}: index {idx!r} is not a committed record of the bundle, "
                "or is opened twice"
            )
            continue
        seen.add(idx)
        try:
            found.view = open_record(found.obj, doc["openings"])
        except OpeningError as e:
            found.unopened = True
            problems.add(
                f"{record_place(found)}: {e}: the opened values are not the ones the log committed",
                f"记录 seq {found.obj.get('seq')}（日志序号 {idx}）的开启值与已登记的承诺不符：{e}",
            )
    for idx, r in sealed.items():
        if idx not in seen:
            r.unopened = True
            problems.append(f"{record_place(r)}: sealed, and not opened in {OPENINGS}")
    withheld = 0
    for idx, r in confidential.items():
        if idx not in seen:
            r.unopened = True
            withheld += 1
    if problems:
        out.failed_on(
            "sealed_openings",
            T_OPENINGS,
            problems,
            f"{len(problems)} problem(s) opening sealed records; first: ",
            f"密封记录开启有 {len(problems)} 处问题；首个：",
        )
    elif confidential:
        _withheld(out, len(sealed), len(confidential) - withheld, withheld)
    else:
        out.passed(
            "sealed_openings",
            T_OPENINGS,
            f"all {len(sealed)} sealed record(s) opened: every value matches its commitment",
            f"全部 {len(sealed)} 条密封记录已开启，每个值均与其承诺一致",
        )


def _withheld(out: CheckList, sealed: int, opened: int, withheld: int) -> None:
    """The check passes: what is opened matches, and what is withheld is the law's."""
    out.passed(
        "sealed_openings",
        T_OPENINGS,
        f"{sealed} sealed record(s) and {opened} record(s) with confidential fields opened, "
        "every value matching its commitment; "
        f"{withheld} record(s) keep confidential fields (a complainant, the evaluation "
        "committee) as commitments only, withheld from this reader",
        f"已开启 {sealed} 条密封记录和 {opened} 条含保密字段的记录，每个值均与其承诺一致；"
        f"{withheld} 条记录的保密字段（投诉人、评标委员会成员）仅以承诺值提供，未向本读者开启",
        withheld=withheld,
    )
