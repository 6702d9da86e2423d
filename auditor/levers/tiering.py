"""model_tiering lever (LA2xx): premium models doing simple work, routing inside mixed features, cheaper
successors, distillation candidates.

Per request: the classifier (auditor.classify) names the task family; per feature the family mix says
whether the feature is stable (one kind of work: move it, LA201) or mixed (a router could send its simple
share down, LA202). A moved request costs what the same token counts cost on the candidate model
(`PriceBook.cost` on a copy of the rows with `model_id` swapped). The expected counterfactual moves a share
of those requests (`move_share` / `route_share`): the counterfactual cost of a request is
`cost - share * (cost - candidate_cost)`, so low/expected/high differ only in that share.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from auditor.classify import (
    DEFAULT_SIMPLE_FAMILIES,
    FAMILIES,
    REASONING,
    UNKNOWN,
    classify_compact,
    feature_profile,
    text_signals,
)
from auditor.config import ConfigError
from auditor.levers.base import COUNTERFACTUAL_SCHEMA, LeverContext, LeverResult, fetch_rows, severity, total_cost
from auditor.levers.options import count, names, number, reject_unknown
from auditor.prices import ModelPrice, row_slices
from auditor.redact import excerpt
from auditor.reduce import ensure_reduced
from auditor.report import Finding, Gap, usd
from auditor.schema import MONEY, TOKEN_COLUMNS

LEVER_ID = "model_tiering"
UNATTRIBUTED = "(unattributed)"
_OPT = f"levers.{LEVER_ID}"
_SIGNALS = f"_{LEVER_ID}_"  # prefix of the text signal columns features() adds (auditor.classify.TEXT_SIGNALS)
_NO_TEXT = _SIGNALS + "no_text"

# Columns the lever reads (classification + pricing a swapped model); the texts only through features().
_COLUMNS = (
    "row_id",
    "status",  # PriceBook.cost bills failed calls without usage at $0; without it their cost is unknown
    "timestamp",
    "provider",
    "model",
    "model_id",
    "price_date",
    "feature",
    "cost_usd",
    *TOKEN_COLUMNS,
    "batch",
    "service_tier",
    "response_format",
    "tools_count",
    "temperature",
    "finish_reason",
)


# The requests the lever analyses: priced, with a model id. Not a filtered copy of every request (~0.1 KB each):
# each step filters the rows it reads.
_PRICED = pl.col("cost_usd").is_not_null() & pl.col("model_id").is_not_null()


# Rows priced on a candidate model at once (_Analysis._cost_on): bounds the price join's temporary to ~10 MB.
_PRICE_ROWS = 8192

# What the analysis keeps of each priced request, besides feature and the labels: PriceBook.cost's inputs
_WORK_COLUMNS: tuple[str, ...] = ("row_id", "status", "timestamp", "model_id", "price_date", "cost_usd", *TOKEN_COLUMNS)
_WORK_COLUMNS += ("batch", "service_tier")

# ---------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Shares:
    low: float
    expected: float
    high: float


@dataclass(frozen=True)
class Distillation:
    min_requests: int = 10_000  # narrow *and* high volume within the logged period
    training_cost_usd: Decimal = Decimal("500")  # fine-tuning run(s) incl. data preparation compute
    eval_requests: int = 500  # requests replayed on the current model to build and check the eval set
    quality_retention: float = 0.9  # share of the feature's traffic the fine-tuned model can take over
    inference_multiplier: Decimal = Decimal("2")  # fine-tuned small models are billed ~2x their base price


@dataclass(frozen=True)
class TieringOptions:
    """`levers: model_tiering:` in llm-audit.yaml; defaults documented in docs/rules/LA201.md."""

    pins: dict[str, str] = field(default_factory=dict)  # feature -> model: never changed by this lever
    quality_critical: frozenset[str] = frozenset()  # features never downgraded
    cross_provider: bool = False
    candidates: dict[str, tuple[str, ...]] = field(default_factory=dict)  # model_id -> extra candidates
    tiers: frozenset[str] = frozenset({"premium"})  # model families the lever moves down from
    simple_families: tuple[str, ...] = DEFAULT_SIMPLE_FAMILIES
    stable_share: float = 0.8  # dominant family share that makes a feature "stable"
    min_requests: int = 20  # fewer requests in a feature -> not judged
    min_route_share: float = 0.2  # simple share a mixed feature needs before routing pays
    move_share: Shares = Shares(0.5, 0.8, 1.0)  # of simple requests in a stable feature (LA201)
    route_share: Shares = Shares(0.3, 0.6, 0.9)  # of simple requests a router sends down (LA202)
    successor_share: Shares = Shares(0.5, 1.0, 1.0)  # of requests moved to a same-tier successor (LA203)
    distillation: Distillation = Distillation()

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> TieringOptions:
        known = {
            "pins", "quality_critical", "cross_provider", "candidates", "tiers", "simple_families", "stable_share",
            "min_requests", "min_route_share", "move_share", "route_share", "successor_share", "distillation",
        }  # fmt: skip
        reject_unknown(raw, known, _OPT)
        d = cls()
        pins = raw.get("pins") or {}
        if not isinstance(pins, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in pins.items()):
            raise ConfigError(f"{_OPT}.pins must map feature names to model names")
        candidates = raw.get("candidates") or {}
        if not isinstance(candidates, dict):
            raise ConfigError(f"{_OPT}.candidates must map a model id to a list of candidate model ids")
        simple = tuple(names(raw, "simple_families", list(d.simple_families), _OPT))
        bad = [f for f in simple if f not in FAMILIES]
        if bad:
            raise ConfigError(f"{_OPT}.simple_families: unknown family {bad[0]!r}; families: {', '.join(FAMILIES)}")
        tiers = frozenset(names(raw, "tiers", sorted(d.tiers), _OPT))
        if not tiers <= {"premium", "mid", "small"}:
            raise ConfigError(f"{_OPT}.tiers must list model families among premium, mid, small")
        cross = raw.get("cross_provider", False)
        if not isinstance(cross, bool):
            raise ConfigError(f"{_OPT}.cross_provider must be true or false")
        return cls(
            pins=dict(pins),
            quality_critical=frozenset(names(raw, "quality_critical", [], _OPT)),
            cross_provider=cross,
            candidates={str(k): tuple(names(candidates, k, [], f"{_OPT}.candidates")) for k in candidates},
            tiers=tiers,
            simple_families=simple,
            stable_share=_fraction(raw, "stable_share", d.stable_share),
            min_requests=count(raw, "min_requests", d.min_requests, _OPT),
            min_route_share=_fraction(raw, "min_route_share", d.min_route_share),
            move_share=_shares(raw, "move_share", d.move_share),
            route_share=_shares(raw, "route_share", d.route_share),
            successor_share=_shares(raw, "successor_share", d.successor_share),
            distillation=_distillation(raw.get("distillation") or {}, d.distillation),
        )


def _fraction(raw: dict[str, Any], key: str, default: float, where: str = _OPT) -> float:
    return number(raw, key, default, where, upper=1.0)


def _money(raw: dict[str, Any], key: str, default: Decimal, where: str) -> Decimal:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ConfigError(f"{where}.{key} must be a number")
    try:
        amount = Decimal(str(value))
    except ArithmeticError as exc:
        raise ConfigError(f"{where}.{key} must be a number") from exc
    if amount < 0:
        raise ConfigError(f"{where}.{key} must be >= 0")
    return amount


def _shares(raw: dict[str, Any], key: str, default: Shares) -> Shares:
    value = raw.get(key)
    if value is None:
        return default
    where = f"{_OPT}.{key}"
    if not isinstance(value, dict) or set(value) - {"low", "expected", "high"}:
        raise ConfigError(f"{where} must be a mapping with low, expected, high (fractions of requests)")
    shares = Shares(
        _fraction(value, "low", default.low, where),
        _fraction(value, "expected", default.expected, where),
        _fraction(value, "high", default.high, where),
    )
    if not shares.low <= shares.expected <= shares.high:
        raise ConfigError(f"{where}: need low <= expected <= high")
    return shares


def _distillation(raw: dict[str, Any], d: Distillation) -> Distillation:
    where = f"{_OPT}.distillation"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping")
    known = {"min_requests", "training_cost_usd", "eval_requests", "quality_retention", "inference_multiplier"}
    reject_unknown(raw, known, where)
    return Distillation(
        min_requests=count(raw, "min_requests", d.min_requests, where),
        training_cost_usd=_money(raw, "training_cost_usd", d.training_cost_usd, where),
        eval_requests=count(raw, "eval_requests", d.eval_requests, where),
        quality_retention=_fraction(raw, "quality_retention", d.quality_retention, where),
        inference_multiplier=_money(raw, "inference_multiplier", d.inference_multiplier, where),
    )


# ---------------------------------------------------------------------------------------------- analysis


@dataclass
class _Move:
    """Requests this lever moves to `target` with a share range; one per finding."""

    code: str
    rows: pl.DataFrame  # row_id, cost_usd, target_cost_usd (clipped at cost_usd)
    shares: Shares


def _dec(x: float) -> Decimal:
    return Decimal(str(x))


def _savings(rows: pl.DataFrame) -> Decimal:
    """Sum of per-request savings if every listed request moved (exact Decimal)."""
    total = rows.select((pl.col("cost_usd") - pl.col("target_cost_usd")).sum()).item()
    return Decimal(total or 0)


class TieringLever:
    id = LEVER_ID
    title = "Model tiering and routing"
    reads: tuple[str, ...] = _COLUMNS  # the heads of the example excerpts are fetched for those rows (fetch_rows)

    def check_options(self, options: dict[str, Any]) -> None:
        TieringOptions.parse(dict(options))

    def features(self, chunk: pl.DataFrame, options: dict[str, Any]) -> pl.DataFrame:
        """The classifier's text signals (keywords in the instructions, code in the output, no text at all)."""
        return text_signals(chunk, prefix=_SIGNALS)

    def analyze(self, frame: pl.DataFrame, ctx: LeverContext) -> LeverResult:
        opts = TieringOptions.parse(ctx.options)
        return _Analysis(ensure_reduced(frame, self, ctx.options), ctx, opts).run()


class _Analysis:
    def __init__(self, frame: pl.DataFrame, ctx: LeverContext, opts: TieringOptions) -> None:
        self.ctx = ctx
        self.opts = opts
        privacy = getattr(ctx.config, "privacy", None) or {}
        self.full_text = bool(privacy.get("show_full_text", False))
        self.frame = frame  # reduced; the text heads of the example excerpts come through fetch_rows
        self.work = _classified(frame)  # every request: each step filters _PRICED itself
        self.total = total_cost(frame)
        self.profile = {
            row["feature"]: row
            for row in feature_profile(
                self.work.lazy().filter(_PRICED), simple_families=opts.simple_families, stable_share=opts.stable_share
            ).iter_rows(named=True)
        }
        self.findings: list[Finding] = []
        self.examples: list[tuple[dict[str, Any], int]] = []  # (evidence, row_id): excerpts fetched in one call
        self.moves: list[_Move] = []
        self.skipped_features: set[str] = set()

    # -- pricing helpers

    def _on(self, rows: pl.DataFrame) -> date | None:
        """The pricing date for a group: --price-date, else the latest date its rows were priced at."""
        if self.ctx.price_date is not None:
            return self.ctx.price_date
        latest = rows["price_date"].max()
        return latest if isinstance(latest, date) else None

    def _price(self, model_id: str, on: date) -> ModelPrice | None:
        try:
            return self.ctx.prices.model(model_id, on)
        except (KeyError, LookupError, ValueError):
            return None

    def _cost_on(self, parts: Iterable[pl.DataFrame], model_id: str) -> pl.Series | None:
        """Cost of the same requests (same token counts) on `model_id`, from `parts` (slices of them);
        None when it cannot be priced. Pricing is row-local, and the price join holds ~1.2 KB a row while it runs:
        a group here can be a large share of all requests."""
        swapped = pl.lit(model_id, dtype=pl.String).alias("model_id")
        pieces = [self.ctx.prices.cost(part.with_columns(swapped), price_date=self.ctx.price_date) for part in parts]
        cost = pl.concat(pieces) if len(pieces) > 1 else pieces[0]
        # a request the candidate cannot price stays where it is (min_horizontal below ignores the null)
        return None if cost.null_count() == cost.len() else cost.cast(MONEY)

    def _target_rows(
        self, rows: pl.DataFrame, target: str, parts: Iterable[pl.DataFrame] | None = None
    ) -> pl.DataFrame | None:
        """row_id, cost_usd and target_cost_usd of `rows`; the requests are priced from `parts` when given (the
        same requests, whole, in slices), else from `rows`."""
        cost = self._cost_on(row_slices(rows, _PRICE_ROWS) if parts is None else parts, target)
        if cost is None:
            return None
        # a request never costs more after the move: savings cannot be negative per request
        return rows.select("row_id", "cost_usd").with_columns(
            pl.min_horizontal(pl.col("cost_usd"), cost.alias("target")).cast(MONEY).alias("target_cost_usd")
        )

    def _candidates(self, price: ModelPrice, on: date) -> list[str]:
        """Same-provider cheaper candidates first, then configured extras (other providers only if allowed)."""
        out: list[str] = []
        for cand in (*price.cheaper_candidates, *self.opts.candidates.get(price.model_id, ())):
            cand_price = self._price(cand, on)
            if cand in out or cand == price.model_id or cand_price is None:
                continue
            if cand_price.provider != price.provider and not self.opts.cross_provider:
                continue
            out.append(cand)
        return out

    def _pick(self, rows: pl.DataFrame, price: ModelPrice, on: date) -> tuple[str, pl.DataFrame] | None:
        """The first candidate that prices the requests and saves money on them."""
        for cand in self._candidates(price, on):
            target = self._target_rows(rows, cand)
            if target is not None and _savings(target) > 0:
                return cand, target
        return None

    # -- the run

    def run(self) -> LeverResult:
        moved: list[pl.Series] = []  # row_ids moved down a tier (a Python set of ints is ~60 bytes a row)
        tiered_features: set[str] = set()
        for feature, model_id, positions in _groups(self.work, ["feature", "model_id"]):
            assert isinstance(feature, str) and isinstance(model_id, str)
            if self._protected(feature):
                continue
            rows = self.work[positions]  # one group's rows at a time (partition_by would copy them all at once)
            on = self._on(rows)
            price = self._price(model_id, on) if on else None
            if on is None or price is None:
                continue
            move = self._tier(feature, price, on, rows)
            if move is not None:
                moved.append(move.rows["row_id"])
                tiered_features.add(feature)
        self._successors(moved)
        del moved  # row_ids the moves hold too: gone with them in _result
        self._distillation(tiered_features)
        return self._result()

    def _protected(self, feature: str) -> bool:
        if feature in self.opts.pins or feature in self.opts.quality_critical:
            self.skipped_features.add(feature)
            return True
        return False

    def _tier(self, feature: str, price: ModelPrice, on: date, rows: pl.DataFrame) -> _Move | None:
        """LA201 (stable simple feature) or LA202 (mixed feature with a routable simple share)."""
        prof = self.profile[feature]
        if price.family not in self.opts.tiers or prof["requests"] < self.opts.min_requests:
            return None
        stable_simple = prof["stable"] and prof["dominant_family"] in self.opts.simple_families
        routable = not prof["stable"] and prof["simple_share"] >= self.opts.min_route_share
        if not (stable_simple or routable):
            return None
        simple = rows.filter(pl.col("task_family").is_in(list(self.opts.simple_families)))
        if simple.is_empty():
            return None
        picked = self._pick(simple, price, on)
        if picked is None:
            return None
        cand, target = picked
        code, shares = ("LA201", self.opts.move_share) if stable_simple else ("LA202", self.opts.route_share)
        move = _Move(code, target, shares)
        self.moves.append(move)
        self.findings.append(self._tier_finding(move, feature, price, cand, rows, simple))
        return move

    def _tier_finding(
        self, move: _Move, feature: str, price: ModelPrice, cand: str, rows: pl.DataFrame, simple: pl.DataFrame
    ) -> Finding:
        prof = self.profile[feature]
        full = _savings(move.rows)
        s = move.shares
        expected = full * _dec(s.expected)
        # Counter.most_common(3) without a Python string per request: counts in order of first appearance, then a
        # stable sort (ties keep that order, as Counter's do)
        top = (
            simple.group_by("family_signals", maintain_order=True)
            .len()
            .sort("len", descending=True, maintain_order=True)
        )
        signals = [(str(sig), int(n)) for sig, n in top.head(3).iter_rows()]
        evidence: dict[str, Any] = {
            "feature": feature,
            "model": price.model_id,
            "model_family": price.family,
            "candidate": cand,
            "feature_requests": prof["requests"],
            "task_families": json.loads(prof["families"]),
            "dominant_family": prof["dominant_family"],
            "dominant_share": round(prof["dominant_share"], 4),
            "simple_share": round(prof["simple_share"], 4),
            "signals": [{"signals": sig, "requests": n} for sig, n in signals],
            "requests_on_model": rows.height,
            "simple_requests": simple.height,
            "cost_usd": usd(simple["cost_usd"].sum()),
            "cost_on_candidate_usd": usd(move.rows["target_cost_usd"].sum()),
            "share_moved": {"low": s.low, "expected": s.expected, "high": s.high},
            "savings_low_usd": usd(full * _dec(s.low)),
            "savings_high_usd": usd(full * _dec(s.high)),
            "example": "",  # _fill_examples
        }
        self.examples.append((evidence, int(simple["row_id"].min())))  # type: ignore[arg-type]
        scope = {"feature": feature, "model": price.model_id, "provider": price.provider}
        fam = prof["dominant_family"].replace("_", " ")
        if move.code == "LA201":
            title = f"Premium model {price.model_id} runs a simple {fam} feature '{feature}'"
            rec = (
                f"Move '{feature}' to {cand} after checking quality on a replayed sample: "
                f"`llm-audit export-eval LOGS --feature {feature} --to {cand} -o eval.jsonl`. "
                f"Pin it in llm-audit.yaml (levers.model_tiering.pins) if the premium model is deliberate."
            )
        else:
            title = (
                f"Mixed feature '{feature}' on {price.model_id}: {prof['simple_share']:.0%} of requests are simple "
                f"enough to route to {cand}"
            )
            rec = (
                f"Put a router in front of '{feature}' (rules on the signals below, or a small classifier) that "
                f"sends the simple requests to {cand} and keeps the rest on {price.model_id}; verify with "
                f"`llm-audit export-eval`."
            )
        return Finding(
            code=move.code,
            lever=LEVER_ID,
            title=title,
            severity=severity(expected, self.total, floor="low"),
            savings_usd=usd(expected) or 0.0,
            affected_requests=simple.height,
            recommendation=rec,
            scope=scope,
            evidence=evidence,
        )

    def _fill_examples(self) -> None:
        """Each tier finding's example: an excerpt of its first simple request's system prompt, else its user turn.
        The heads of all of them in one fetch (the frame is reduced; spilled parts are read once per call)."""
        if not self.examples:
            return
        ids = pl.Series("row_id", [row_id for _, row_id in self.examples], dtype=pl.Int64)
        heads = fetch_rows(self.frame, self.ctx, ids, ("system_text", "last_user_text"))
        for (evidence, _), system, user in zip(
            self.examples, heads["system_text"], heads["last_user_text"], strict=True
        ):
            evidence["example"] = excerpt(system or user, full=self.full_text)

    def _successors(self, moved: list[pl.Series]) -> None:
        """LA203: a newer same-tier model priced below the one in use, for requests not moved down a tier."""
        ids = pl.concat(moved) if moved else pl.Series("row_id", [], dtype=pl.Int64)
        rest = (
            _PRICED
            & ~pl.col("row_id").is_in(ids.implode())
            & ~pl.col("feature").is_in(pl.Series(self._shielded(), dtype=pl.String).implode())
        )
        for model_id, positions in _groups(self.work, ["model_id"], where=rest):
            on = (
                self.ctx.price_date
                if self.ctx.price_date is not None
                else self.work["price_date"].gather(positions).max()
            )
            price = self._price(model_id, on) if isinstance(on, date) else None
            if price is None or not price.successor:
                continue
            # A model's requests can be a large share of all: what the finding reads of them (28 bytes a row), and
            # every column only a slice at a time, for pricing.
            rows = self.work.select("row_id", "cost_usd", "feature")[positions]
            parts = (self.work[positions.slice(at, _PRICE_ROWS)] for at in range(0, len(positions), _PRICE_ROWS))
            target = self._target_rows(rows, price.successor, parts)
            if target is None or _savings(target) <= 0:
                continue
            move = _Move("LA203", target, self.opts.successor_share)
            self.moves.append(move)
            full = _savings(target)
            s = move.shares
            expected = full * _dec(s.expected)
            features = sorted(rows["feature"].unique().cast(pl.String).to_list())  # distinct ones, not one a row
            self.findings.append(
                Finding(
                    code="LA203",
                    lever=LEVER_ID,
                    title=f"{model_id} is priced above its successor {price.successor} for the same work",
                    severity=severity(expected, self.total, floor="low"),
                    savings_usd=usd(expected) or 0.0,
                    affected_requests=rows.height,
                    recommendation=(
                        f"Switch from {model_id} to {price.successor} (same tier, newer, cheaper on this traffic); "
                        f"replay a sample with `llm-audit export-eval` first if outputs are parsed strictly."
                    ),
                    scope={"model": model_id, "provider": price.provider},
                    evidence={
                        "model": model_id,
                        "successor": price.successor,
                        "requests": rows.height,
                        "features": features[:20],
                        "cost_usd": usd(rows["cost_usd"].sum()),
                        "cost_on_successor_usd": usd(target["target_cost_usd"].sum()),
                        "share_moved": {"low": s.low, "expected": s.expected, "high": s.high},
                        "savings_low_usd": usd(full * _dec(s.low)),
                        "savings_high_usd": usd(full * _dec(s.high)),
                    },
                )
            )

    def _shielded(self) -> list[str]:
        return sorted(set(self.opts.pins) | self.opts.quality_critical)

    def _distillation(self, tiered_features: set[str]) -> None:
        """LA204: narrow, high-volume features where a fine-tuned small model pays back within the period.

        Reported per finding only: a fine-tuning project is not a config switch, so it is not in the plan.
        """
        d = self.opts.distillation
        stamp = pl.col("timestamp").filter(_PRICED)
        span = self.work.select((stamp.max() - stamp.min()).dt.total_seconds()).item()
        period_days = max(float(span or 0) / 86400.0, 1.0)  # less than a day of logs counts as one day
        for feature, prof in sorted(self.profile.items()):
            if (
                feature in tiered_features
                or feature == UNATTRIBUTED
                or self._protected(feature)
                or not prof["stable"]
                or prof["dominant_family"] in (REASONING, UNKNOWN)
                or prof["requests"] < d.min_requests
            ):
                continue
            rows = self.work.filter(_PRICED & (pl.col("feature") == feature))
            models = rows["model_id"].unique().sort().to_list()
            on = self._on(rows)
            if len(models) != 1 or on is None:
                continue  # one model per feature keeps the teacher and the comparison unambiguous
            price = self._price(models[0], on)
            if price is None or price.family == "small":
                continue
            small = next((c for c in self._candidates(price, on) if self._family(c, on) == "small"), None)
            target = self._target_rows(rows, small) if small else None
            if small is None or target is None:
                continue
            self._distill_finding(feature, price, small, rows, target, period_days)

    def _family(self, model_id: str, on: date) -> str | None:
        price = self._price(model_id, on)
        return price.family if price else None

    def _distill_finding(
        self,
        feature: str,
        price: ModelPrice,
        small: str,
        rows: pl.DataFrame,
        target: pl.DataFrame,
        period_days: float,
    ) -> None:
        d = self.opts.distillation
        current = Decimal(rows["cost_usd"].sum())
        tuned = Decimal(target["target_cost_usd"].sum()) * d.inference_multiplier
        retention = _dec(d.quality_retention)
        gross = retention * (current - tuned)
        eval_cost = current / rows.height * d.eval_requests
        one_off = d.training_cost_usd + eval_cost
        net = gross - one_off
        if net <= 0:
            return
        payback_days = float(one_off / gross) * period_days
        self.findings.append(
            Finding(
                code="LA204",
                lever=LEVER_ID,
                title=f"'{feature}' is narrow and high-volume: a fine-tuned {small} would pay back within the period",
                severity="low",  # a project, not a switch: never ranked above the direct findings
                savings_usd=usd(net) or 0.0,
                affected_requests=rows.height,
                recommendation=(
                    f"Fine-tune {small} on '{feature}' outputs of {price.model_id} (the logged outputs are the "
                    f"training labels), check it on a held-out eval set, then route the feature to it. "
                    f"Not included in the plan: it needs a training project."
                ),
                scope={"feature": feature, "model": price.model_id, "provider": price.provider},
                evidence={
                    "feature": feature,
                    "model": price.model_id,
                    "fine_tune_base": small,
                    "dominant_family": self.profile[feature]["dominant_family"],
                    "requests": rows.height,
                    "period_days": round(period_days, 2),
                    "cost_usd": usd(current),
                    "fine_tuned_cost_usd": usd(tuned),
                    "gross_savings_usd": usd(gross),
                    "training_cost_usd": usd(d.training_cost_usd),
                    "eval_requests": d.eval_requests,
                    "eval_cost_usd": usd(eval_cost),
                    "quality_retention": d.quality_retention,
                    "inference_multiplier": float(d.inference_multiplier),
                    "payback_days": round(payback_days, 1),
                    "in_plan": False,
                },
            )
        )

    # -- result

    def _result(self) -> LeverResult:
        self._fill_examples()
        # Each move's rows are released once its counterfactual part is made, and the parts are not rechunked
        # before the sort: fewer copies of the moved requests alive at the lever's end.
        parts = []
        for m in self.moves:
            parts.append(
                m.rows.select(
                    "row_id",
                    _after(m.shares.expected).alias("cost_after_usd"),
                    _after(m.shares.low).alias("cost_after_low_savings_usd"),
                    _after(m.shares.high).alias("cost_after_high_savings_usd"),
                )
            )
            m.rows = m.rows.clear()
        counterfactual = (
            pl.concat(parts, rechunk=False).sort("row_id") if parts else pl.DataFrame(schema=COUNTERFACTUAL_SCHEMA)
        ).cast(COUNTERFACTUAL_SCHEMA)  # type: ignore[arg-type]
        del parts
        code_rank = {"LA201": 0, "LA202": 1, "LA203": 2, "LA204": 3}
        findings = sorted(
            self.findings,
            key=lambda f: (-f.savings_usd, code_rank[f.code], f.scope.get("feature", ""), f.scope.get("model", "")),
        )
        return LeverResult(
            lever_id=LEVER_ID,
            title=TieringLever.title,
            confidence="heuristic",
            counterfactual=counterfactual,
            findings=findings,
            assumptions=self._assumptions(),
            method=(
                "Each request is classified into a task family from logged signals; premium requests of simple "
                "families in stable features (LA201), the simple share of mixed features (LA202) and requests on "
                "models with a cheaper same-tier successor (LA203) are repriced on the candidate model with the "
                "same token counts; a share of them is assumed to move."
            ),
            gaps=self._gaps(),
        )

    def _assumptions(self) -> list[str]:
        o = self.opts
        out = [
            "Token counts are assumed equal on the candidate model (same provider, same tokenizer); across "
            "providers tokenizers differ by up to ~20%.",
            "Task families come from a deterministic heuristic classifier (prompt wording, output format and "
            "length, tools, temperature, finish reason); labels and their signals are in each finding.",
            f"Stable feature: one family covers >= {o.stable_share:.0%} of its requests; features with fewer than "
            f"{o.min_requests} requests are not judged. Simple families: {', '.join(o.simple_families)}.",
            f"Share of simple requests that move in a stable feature (LA201): low {o.move_share.low:.0%}, expected "
            f"{o.move_share.expected:.0%}, high {o.move_share.high:.0%}.",
            f"Share a router sends down inside a mixed feature (LA202): low {o.route_share.low:.0%}, expected "
            f"{o.route_share.expected:.0%}, high {o.route_share.high:.0%}; the router's own cost is not counted.",
            f"Share moved to a cheaper same-tier successor (LA203): low {o.successor_share.low:.0%}, expected "
            f"{o.successor_share.expected:.0%}, high {o.successor_share.high:.0%}.",
            "Distillation (LA204) savings are per finding only, net of training and eval cost, not in the plan.",
            "Cross-provider candidates: " + ("allowed (levers.model_tiering.cross_provider)." if o.cross_provider
                                             else "off; only same-provider models are proposed."),
        ]  # fmt: skip
        if self.skipped_features:
            out.append(
                "Pinned or quality-critical features left unchanged: " + ", ".join(sorted(self.skipped_features)) + "."
            )
        return out

    def _gaps(self) -> list[Gap]:
        """Premium requests judged from output shape alone (no prompt text logged)."""
        no_text = self.work.filter(_PRICED & pl.col(_NO_TEXT))
        if no_text.is_empty():
            return []
        families = {}
        for model_id in no_text["model_id"].unique().to_list():
            on = self._on(no_text.filter(pl.col("model_id") == model_id))
            price = self._price(model_id, on) if on else None
            families[model_id] = price.family if price else None
        premium = no_text.filter(pl.col("model_id").is_in([m for m, f in families.items() if f in self.opts.tiers]))
        if premium.is_empty():
            return []
        return [
            Gap(
                lever=LEVER_ID,
                missing_fields=["prompt_text"],
                requests=premium.height,
                cost_at_stake_usd=usd(premium["cost_usd"].sum()) or 0.0,
                note="task family inferred from output length and format only (no prompt wording logged)",
            )
        ]


def _classified(frame: pl.DataFrame) -> pl.DataFrame:
    """Every request with its task family and the columns the analysis reads: a select (no copy) plus the labels
    as Enum / Categorical (4 bytes a row, not strings); the analysis reads the _PRICED rows."""
    keep = [c for c in _WORK_COLUMNS if c in frame.columns]
    labels = classify_compact(frame, text_prefix=_SIGNALS)
    return frame.select(*keep, pl.col("feature").fill_null(UNATTRIBUTED), _NO_TEXT).hstack(labels.get_columns())


def _groups(frame: pl.DataFrame, keys: list[str], where: pl.Expr = _PRICED) -> list[tuple[Any, ...]]:
    """(*key values, row positions) per group of the rows meeting `where`, sorted by the keys as strings; positions
    keep the frame's order. 4 bytes a row, where partition_by copies every column of every group at once."""
    # Categorical keys: grouping on two string columns row-encodes them (~0.1 KB a row for a moment)
    categorical = [pl.col(k).cast(pl.Categorical) for k in keys]
    index = (
        frame.lazy()
        .select(*categorical, where.alias("_where"))
        .with_row_index("_i")
        .filter(pl.col("_where"))
        .group_by(keys)
        .agg(pl.col("_i"))
        .collect()
    )
    positions = index.get_column("_i")
    groups = [(*key, positions[i]) for i, key in enumerate(index.select(keys).iter_rows())]
    return sorted(groups, key=lambda g: tuple(str(v) for v in g[:-1]))


def _after(share: float) -> pl.Expr:
    """cost - share * (cost - target), exact in Decimal."""
    s = pl.lit(_dec(share)).cast(MONEY)
    return (pl.col("cost_usd") - (pl.col("cost_usd") - pl.col("target_cost_usd")) * s).cast(MONEY)


LEVER = TieringLever()
