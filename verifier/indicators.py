"""Collusion indicators (串通投标预警): signs in opened bids that a person should examine.

招标投标法实施条例 第三十九条 forbids bidders to collude, 第四十一条 forbids the tenderer to
collude with them, and 第四十条 lists situations that are *deemed* collusion among bidders.
Some of them leave traces in what the trading platform records at bid time, sealed until
the opening (``ledger/catalogue.json``: ``bid_deposit_paid``, ``bid_submitted``,
``bid_modified``, ``bid_withdrawn``). After the opening this module looks for them:

====  =========================  ==================================  ========================
id    kind                       trace                               article
====  =========================  ==================================  ========================
I01   same_deposit_account       deposits of different bidders       第四十条（六）
                                 paid from one account
I02   identical_bid_files        the same file (ciphertext hash or   第四十条（四）（五）
                                 attachment SHA-256) in the bids of
                                 different bidders
I03   same_client_ip             bids of different bidders sent      a sign of 第四十条（一）（二）
                                 from one IP address
I04   same_device                ... from one device                 a sign of 第四十条（一）（二）
I05   same_project_manager       one project manager named by        第四十条（三）
                                 different bidders
I06   same_file_creator          one creator in the file metadata    第四十条（一）
                                 of different bidders' bid files
I07   price_progression          the standing prices form a regular  第四十条（四）
                                 progression
I08   price_narrow_band          the standing prices lie in an       第四十条（四）
                                 abnormally narrow band
====  =========================  ==================================  ========================

**An indicator is a warning for a person to examine, never a verdict** (:data:`NOTICE_EN`,
shown wherever indicators are): an office's shared internet line, a platform's default
author name, or prices near a published cap can raise one lawfully; a person checks the
facts before anything follows from it.

The price tests (exact rational arithmetic, so a boundary case decides the same everywhere;
thresholds in :class:`Thresholds`, each stated in the indicator it raises):

- *Narrow band* (I08): the coefficient of variation ``CV = s / mean`` of the standing
  prices, ``s`` the sample standard deviation (n − 1), at or below ``cv_max`` (1 %), with at
  least ``min_bids`` (3) bidders. Independent bidders price from their own costs, which
  differ by more than that; prices all within about 1 % of their mean are what a shared
  price sheet leaves. A published cap (最高投标限价) that every bidder prices just under can
  do it too, which is why it is a warning.
- *Regular progression* (I07): the prices sorted, all distinct, with at least ``min_bids``
  bidders; the gaps ``d_i`` are *constant* when each lies within ``tolerance`` (1 %) of their
  mean ``D = (max − min) / (n − 1)``, i.e. ``|d_i − D| ≤ tolerance · D`` (arithmetic
  progression: 100, 101, 102 万); else the relative steps ``d_i / p_i`` are tested the same
  way (geometric progression: each price 2 % below the last). With three bids there are
  two gaps, and independent prices pass by chance in 1 to 2 tenders in 100 (simulated,
  docs/indicators.md), so a three-bid progression is ``weak``; with four, about 5 in
  100 000 (``medium``).

Pure code over the records as posted (sealed ones opened, :func:`verifier.sealed.open_record`):
records in, :class:`Indicators` out; :class:`NotOpened` for records with no bid opening,
because before it the bids are sealed and nothing may be computed from them.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final, Literal

from verifier.errors import VerifierError

__all__ = [
    "BID_EVENTS",
    "DEPOSIT_EVENT",
    "KINDS",
    "MAX_EVIDENCE",
    "MAX_INDICATORS",
    "NOTICE_EN",
    "NOTICE_ZH",
    "OPENING_EVENT",
    "Evidence",
    "Indicator",
    "Indicators",
    "Kind",
    "NotOpened",
    "Strength",
    "Thresholds",
    "compute",
]

NOTICE_ZH: Final = "预警指标只提示需要人工核查的情形，不是认定串通投标的结论。"
NOTICE_EN: Final = (
    "An indicator is a warning for a person to examine, never a verdict of collusion."
)

#: The event that unseals the bids (the catalogue's ``sealed_until``).
OPENING_EVENT: Final = "bid_opening_started"
BID_EVENTS: Final = ("bid_submitted", "bid_modified", "bid_withdrawn")
DEPOSIT_EVENT: Final = "bid_deposit_paid"
#: Evidence items kept per indicator, and indicators per project (every list is bounded;
#: the count of what was left out is stated).
MAX_EVIDENCE: Final = 100
MAX_INDICATORS: Final = 1000

Strength = Literal["strong", "medium", "weak"]


class NotOpened(VerifierError):
    """The records hold no bid opening: the bids are sealed, and no indicator is computed."""


@dataclass(frozen=True)
class Kind:
    """One kind of indicator: its id, name, the article it comes from, and its title."""

    id: str
    name: str
    article_zh: str
    article_en: str
    title_zh: str
    title_en: str


_ART = "招标投标法实施条例 第四十条"
_ART_EN = "Regulation on the Implementation of the Bidding Law, Art. 40"
KINDS: Final[dict[str, Kind]] = {
    k.name: k
    for k in (
        Kind(
            "I01",
            "same_deposit_account",
            f"{_ART}（六）",
            f"{_ART_EN}(6)",
            "不同投标人的投标保证金从同一账户转出",
            "Deposits of different bidders paid from the same account",
        ),
        Kind(
            "I02",
            "identical_bid_files",
            f"{_ART}（四）（五）",
            f"{_ART_EN}(4)(5)",
            "不同投标人的投标文件（密文或附件）完全相同",
            "Identical bid files (ciphertexts or attachments) from different bidders",
        ),
        Kind(
            "I03",
            "same_client_ip",
            f"{_ART}（一）（二）之迹象",
            f"a sign of {_ART_EN}(1)(2)",
            "不同投标人从同一 IP 地址递交",
            "Bids of different bidders sent from the same IP address",
        ),
        Kind(
            "I04",
            "same_device",
            f"{_ART}（一）（二）之迹象",
            f"a sign of {_ART_EN}(1)(2)",
            "不同投标人使用同一设备（硬件特征码相同）递交",
            "Bids of different bidders sent from the same device (hardware fingerprint)",
        ),
        Kind(
            "I05",
            "same_project_manager",
            f"{_ART}（三）",
            f"{_ART_EN}(3)",
            "不同投标人载明的项目负责人为同一人",
            "Different bidders name the same project manager",
        ),
        Kind(
            "I06",
            "same_file_creator",
            f"{_ART}（一）",
            f"{_ART_EN}(1)",
            "不同投标人的投标文件元数据创建者相同",
            "Bid files of different bidders name the same creator in their metadata",
        ),
        Kind(
            "I07",
            "price_progression",
            f"{_ART}（四）",
            f"{_ART_EN}(4)",
            "投标报价呈规律性差异（等差或等比）",
            "Prices in regular progression (constant difference or ratio)",
        ),
        Kind(
            "I08",
            "price_narrow_band",
            f"{_ART}（四）",
            f"{_ART_EN}(4)",
            "投标报价异常接近（变异系数过低）",
            "Prices in an abnormally narrow band (low coefficient of variation)",
        ),
    )
}


@dataclass(frozen=True)
class Thresholds:
    """The price tests' thresholds (module docstring); a centre may calibrate its own."""

    #: I08 is raised when the coefficient of variation is at most this.
    cv_max: Fraction = Fraction(1, 100)
    #: I07: each gap (or relative step) within this share of the mean gap (step).
    tolerance: Fraction = Fraction(1, 100)
    #: Both price tests need at least this many bidders with a standing price.
    min_bids: int = 3

    def to_json(self) -> dict[str, Any]:
        return {
            "cv_max": float(self.cv_max),
            "progression_tolerance": float(self.tolerance),
            "min_bids": self.min_bids,
        }


@dataclass(frozen=True)
class Evidence:
    """One value of one record that an indicator rests on."""

    index: int
    seq: int
    type: str
    bidder: str
    field: str
    value: object

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "seq": self.seq,
            "type": self.type,
            "bidder": self.bidder,
            "field": self.field,
            "value": self.value,
        }


@dataclass(frozen=True)
class Indicator:
    """One warning: its kind, strength, the bidders and records it rests on, and why."""

    kind: Kind
    strength: Strength
    bidders: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    message_en: str
    message_zh: str
    #: For the price tests: the test, its statistic and threshold.
    test: dict[str, Any] | None = None
    #: Evidence items left out past MAX_EVIDENCE.
    more: int = 0

    @property
    def id(self) -> str:
        return self.kind.id

    @property
    def events(self) -> list[int]:
        """The log indexes of the records it rests on."""
        return sorted({e.index for e in self.evidence})

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.kind.id,
            "kind": self.kind.name,
            "title": self.kind.title_en,
            "title_zh": self.kind.title_zh,
            "article": self.kind.article_en,
            "article_zh": self.kind.article_zh,
            "strength": self.strength,
            "bidders": list(self.bidders),
            "message": self.message_en,
            "message_zh": self.message_zh,
            "evidence": [e.to_json() for e in self.evidence],
        }
        if self.more:
            out["evidence_left_out"] = self.more
        if self.test is not None:
            out["test"] = self.test
        return out


@dataclass(frozen=True)
class Indicators:
    """A project's indicators, and what they were computed from."""

    items: tuple[Indicator, ...]
    #: Bid and deposit records read.
    records: int
    #: Sealed records whose values could not be read (no valid opening): the indicators
    #: do not see them, and say so.
    unopened: int = 0
    thresholds: Thresholds = field(default_factory=Thresholds)
    #: Indicators left out past MAX_INDICATORS.
    more: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "notice": NOTICE_EN,
            "notice_zh": NOTICE_ZH,
            "indicators": [i.to_json() for i in self.items],
            "records_read": self.records,
            "unopened": self.unopened,
            "thresholds": self.thresholds.to_json(),
        }
        if self.more:
            out["indicators_left_out"] = self.more
        return out


# --- reading the records ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Bid:
    """A bid or deposit record, as the indicators read it."""

    index: int
    seq: int
    type: str
    bidder: str
    payload: Mapping[str, Any]
    attachments: tuple[str, ...]

    def evidence(self, name: str, value: object) -> Evidence:
        return Evidence(self.index, self.seq, self.type, self.bidder, name, value)


def _int(v: object, default: int = -1) -> int:
    return v if type(v) is int else default


def _read(records: Iterable[Mapping[str, Any]], opening: str) -> tuple[list[_Bid], int, bool]:
    """The bid and deposit records in log order, the sealed ones left unopened, and whether
    the records hold the opening."""
    out: list[_Bid] = []
    unopened = 0
    opened = False
    for r in records:
        t = r.get("type")
        if t == opening:
            opened = True
        if t != DEPOSIT_EVENT and t not in BID_EVENTS:
            continue
        if "commitments" in r:  # still sealed: its values are not here
            unopened += 1
            continue
        payload = r.get("payload")
        if not isinstance(payload, dict):
            continue
        bidder = payload.get("bidder")
        if not isinstance(bidder, str) or not bidder:
            continue
        atts = r.get("attachments")
        hashes = tuple(
            a["sha256"].lower()
            for a in (atts if isinstance(atts, list) else ())
            if isinstance(a, dict) and isinstance(a.get("sha256"), str)
        )
        out.append(_Bid(_int(r.get("index")), _int(r.get("seq")), str(t), bidder, payload, hashes))
    out.sort(key=lambda b: b.index)
    return out, unopened, opened


# --- shared values ---------------------------------------------------------------------------


def _shared(
    kind: Kind,
    items: Sequence[tuple[object, Evidence]],
    strength_of: Any,
    describe: Any,
) -> list[Indicator]:
    """One indicator per value that records of two or more different bidders share.

    ``items`` pairs a comparison key with the evidence it came from; ``strength_of(key)``
    and ``describe(key, bidders) -> (en, zh)`` shape the indicator.
    """
    groups: dict[object, list[Evidence]] = {}
    for key, ev in items:
        groups.setdefault(key, []).append(ev)
    out: list[Indicator] = []
    for key, evs in groups.items():
        bidders = tuple(dict.fromkeys(e.bidder for e in evs))
        if len(bidders) < 2:
            continue  # one bidder reusing its own account, device or file: nothing to see
        en, zh = describe(key, bidders)
        out.append(
            Indicator(
                kind,
                strength_of(key),
                bidders,
                tuple(evs[:MAX_EVIDENCE]),
                en,
                zh,
                more=max(0, len(evs) - MAX_EVIDENCE),
            )
        )
    return out


def _names(bidders: Sequence[str]) -> str:
    shown = ", ".join(bidders[:5])
    return shown + (f" and {len(bidders) - 5} more" if len(bidders) > 5 else "")


def _names_zh(bidders: Sequence[str]) -> str:
    shown = "、".join(bidders[:5])
    return shown + (f" 等 {len(bidders)} 家" if len(bidders) > 5 else "")


def _text(v: object) -> str | None:
    return v if isinstance(v, str) and v else None


def _deposit_accounts(bids: Sequence[_Bid]) -> list[Indicator]:
    items = [
        (acct, b.evidence("payload.payer_account", acct))
        for b in bids
        if b.type == DEPOSIT_EVENT and (acct := _text(b.payload.get("payer_account")))
    ]
    return _shared(
        KINDS["same_deposit_account"],
        items,
        lambda _: "strong",
        lambda acct, bs: (
            f"the deposits of {len(bs)} bidders ({_names(bs)}) were paid from account {acct}",
            f"{len(bs)} 家投标人（{_names_zh(bs)}）的投标保证金均从账户 {acct} 转出",
        ),
    )


def _identical_files(bids: Sequence[_Bid]) -> list[Indicator]:
    items: list[tuple[object, Evidence]] = []
    for b in bids:
        if b.type == "bid_withdrawn":
            continue
        if h := _text(b.payload.get("ciphertext_hash")):
            items.append((h.lower(), b.evidence("payload.ciphertext_hash", h)))
        for i, sha in enumerate(dict.fromkeys(b.attachments)):
            items.append((sha, b.evidence(f"attachments[{i}].sha256", sha)))
    return _shared(
        KINDS["identical_bid_files"],
        items,
        lambda _: "strong",
        lambda sha, bs: (
            f"{len(bs)} bidders ({_names(bs)}) submitted the same file (SHA-256 {sha})",
            f"{len(bs)} 家投标人（{_names_zh(bs)}）递交了同一文件（SHA-256 {sha}）",
        ),
    )


def _ip_strength(ip: object) -> Strength:
    # A private or shared address (192.168.1.10 behind countless home routers, a carrier's
    # NAT) names a network, not an office; a public one names far fewer people.
    try:
        a = ipaddress.ip_address(str(ip))
    except ValueError:
        return "weak"
    return "medium" if a.is_global else "weak"


def _client_ips(bids: Sequence[_Bid]) -> list[Indicator]:
    items = [
        (ip, b.evidence("payload.client_ip", ip))
        for b in bids
        if b.type in BID_EVENTS and (ip := _text(b.payload.get("client_ip")))
    ]
    return _shared(
        KINDS["same_client_ip"],
        items,
        _ip_strength,
        lambda ip, bs: (
            f"bids of {len(bs)} bidders ({_names(bs)}) were sent from IP address {ip}",
            f"{len(bs)} 家投标人（{_names_zh(bs)}）的投标均从 IP 地址 {ip} 递交",
        ),
    )


def _devices(bids: Sequence[_Bid]) -> list[Indicator]:
    items = [
        (dev, b.evidence("payload.device_id", dev))
        for b in bids
        if b.type in BID_EVENTS and (dev := _text(b.payload.get("device_id")))
    ]
    return _shared(
        KINDS["same_device"],
        items,
        lambda _: "strong",
        lambda dev, bs: (
            f"bids of {len(bs)} bidders ({_names(bs)}) were sent from device {dev}",
            f"{len(bs)} 家投标人（{_names_zh(bs)}）的投标均由同一设备 {dev} 递交",
        ),
    )


def _fold(v: str) -> str:
    """Names compared without case or surrounding spaces (``Zhang Wei`` is ``zhang wei``)."""
    return " ".join(v.split()).casefold()


def _project_managers(bids: Sequence[_Bid]) -> list[Indicator]:
    items = [
        (_fold(pm), b.evidence("payload.project_manager_id", pm))
        for b in bids
        if b.type != "bid_withdrawn" and (pm := _text(b.payload.get("project_manager_id")))
    ]
    return _shared(
        KINDS["same_project_manager"],
        items,
        lambda _: "strong",
        lambda pm, bs: (
            f"{len(bs)} bidders ({_names(bs)}) name the same project manager {pm}",
            f"{len(bs)} 家投标人（{_names_zh(bs)}）载明的项目负责人均为 {pm}",
        ),
    )


def _file_creators(bids: Sequence[_Bid]) -> list[Indicator]:
    items: list[tuple[object, Evidence]] = []
    for b in bids:
        if b.type == "bid_withdrawn" or not (who := _text(b.payload.get("file_creator"))):
            continue
        tool = _text(b.payload.get("file_tool"))
        # The tool is shown beside the creator: the same creator *and* tool is the stronger
        # sign, but a platform's own tool is used by everyone, so the tool alone is none.
        items.append(
            (_fold(who), b.evidence("payload.file_creator", {"creator": who, "tool": tool}))
        )
    return _shared(
        KINDS["same_file_creator"],
        items,
        lambda _: "medium",
        lambda who, bs: (
            f"the bid files of {len(bs)} bidders ({_names(bs)}) name the same creator {who!r}",
            f"{len(bs)} 家投标人（{_names_zh(bs)}）的投标文件创建者均为“{who}”",
        ),
    )


# --- prices ----------------------------------------------------------------------------------


def _standing_prices(bids: Sequence[_Bid]) -> list[Evidence]:
    """Each bidder's standing price: its last submitted or modified bid, unless withdrawn."""
    standing: dict[str, Evidence] = {}
    for b in bids:
        if b.type == "bid_withdrawn":
            standing.pop(b.bidder, None)
        elif b.type in BID_EVENTS and type(price := b.payload.get("price")) is int:
            standing[b.bidder] = b.evidence("payload.price", price)
    return sorted(standing.values(), key=lambda e: (_int(e.value), e.index))


def _dec(x: Fraction) -> float:
    return round(float(x), 6)


def _narrow_band(prices: Sequence[Evidence], th: Thresholds) -> Indicator | None:
    """I08: the coefficient of variation at or below ``cv_max`` (exact comparison)."""
    p = [_int(e.value) for e in prices]
    n, total = len(p), sum(p)
    if n < th.min_bids or total <= 0:
        return None
    # CV² = s² / mean² = n (n·Σp² − (Σp)²) / ((n − 1)(Σp)²), all integers.
    num = n * (n * sum(x * x for x in p) - total * total)
    den = (n - 1) * total * total
    cv2 = Fraction(num, den)
    if cv2 > th.cv_max * th.cv_max:
        return None
    cv = math.sqrt(num / den)
    bidders = tuple(e.bidder for e in prices)
    return Indicator(
        KINDS["price_narrow_band"],
        "medium",
        bidders,
        tuple(prices[:MAX_EVIDENCE]),
        f"the {n} standing prices have a coefficient of variation of {cv:.4%}, at or "
        f"below the threshold {float(th.cv_max):.2%}",
        f"{n} 个有效报价的变异系数为 {cv:.4%}，不高于阈值 {float(th.cv_max):.2%}",
        {
            "test": "coefficient_of_variation",
            "statistic": round(cv, 6),
            "threshold": _dec(th.cv_max),
            "n": n,
        },
        max(0, n - MAX_EVIDENCE),
    )


def _constant(values: Sequence[Fraction], tolerance: Fraction) -> Fraction | None:
    """The largest deviation from the mean, relative to it, if within ``tolerance``.

    Decided in floating point when that is clearly far from the threshold (sums of many
    fractions with unlike denominators are slow), exactly otherwise.
    """
    approx = [float(v) for v in values]
    mean_f = sum(approx) / len(approx)
    if mean_f > 0 and max(abs(v - mean_f) for v in approx) > mean_f * float(tolerance) * 1.000001:
        return None
    mean = sum(values, Fraction(0)) / len(values)
    if mean <= 0:
        return None
    dev = max(abs(v - mean) for v in values) / mean
    return dev if dev <= tolerance else None


def _progression(prices: Sequence[Evidence], th: Thresholds) -> Indicator | None:
    """I07: constant differences (else constant ratios) within ``tolerance``."""
    p = [_int(e.value) for e in prices]
    n = len(p)
    if n < th.min_bids or p[0] <= 0:
        return None
    gaps = [Fraction(b - a) for a, b in itertools.pairwise(p)]
    if any(g <= 0 for g in gaps):
        return None  # equal prices are no progression (the band test sees them)
    test, what, what_zh = "constant_difference", "differences", "差额"
    dev = _constant(gaps, th.tolerance)
    if dev is None:
        test, what, what_zh = "constant_ratio", "ratios", "比率"
        dev = _constant([g / a for g, a in zip(gaps, p, strict=False)], th.tolerance)
    if dev is None:
        return None
    bidders = tuple(e.bidder for e in prices)
    return Indicator(
        KINDS["price_progression"],
        "weak" if n == 3 else "medium",
        bidders,
        tuple(prices[:MAX_EVIDENCE]),
        f"the {n} standing prices, sorted, step by near-constant {what}: each step within "
        f"{float(dev):.4%} of the mean step (threshold {float(th.tolerance):.2%})",
        f"{n} 个有效报价排序后呈等{'差' if test == 'constant_difference' else '比'}规律：各"
        f"{what_zh}与平均值相差不超过 {float(dev):.4%}（阈值 {float(th.tolerance):.2%}）",
        {
            "test": test,
            "statistic": _dec(dev),
            "threshold": _dec(th.tolerance),
            "n": n,
        },
        max(0, n - MAX_EVIDENCE),
    )


def compute(
    records: Iterable[Mapping[str, Any]],
    thresholds: Thresholds | None = None,
    *,
    opening: str = OPENING_EVENT,
) -> Indicators:
    """The project's collusion indicators, from its records as posted, in id order.

    ``records`` are one project's records (the process and sealed chains), sealed ones
    opened; sealed records still committed (``commitments``) are counted as unopened and
    not read. Raises :class:`NotOpened` when no record is the bid opening: until then the
    bids are sealed, and nothing is computed from them.
    """
    th = thresholds or Thresholds()
    bids, unopened, opened = _read(records, opening)
    if not opened:
        raise NotOpened("the project has no bid opening: its bids are sealed")
    found: list[Indicator] = []
    for find in (
        _deposit_accounts,
        _identical_files,
        _client_ips,
        _devices,
        _project_managers,
        _file_creators,
    ):
        found.extend(find(bids))
    prices = _standing_prices(bids)
    for test in (_progression, _narrow_band):
        if (hit := test(prices, th)) is not None:
            found.append(hit)
    found.sort(key=lambda i: (i.kind.id, i.events))
    return Indicators(
        tuple(found[:MAX_INDICATORS]),
        len(bids),
        unopened,
        th,
        max(0, len(found) - MAX_INDICATORS),
    )
