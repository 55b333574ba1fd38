"""LED, the Lightweight Encoder-Decoder (Koch et al., Criteo; seed paper §4-§5): the front door to its family.

    user vector   u = T^-γ · Σ_{t ≤ T} E[i_t]      (the mean of the history's encoder item vectors: γ 1; or γ ½)
    score         s(u, i) = ⟨u Q, V[i]⟩ + b_i      (one inner product with the decoder's item vectors, plus a bias)

No per-user parameter: a new user's vector is computed from their items. Three estimators learn the tables
(:mod:`~ledrec.models.led_common`), one module each:

* ``spectral`` — :class:`~ledrec.models.led_spectral.SpectralLED`, the closed form of a graph filter;
* ``wls`` — :class:`~ledrec.models.led_wls.WLSLED`, ALS's weighted square loss solved in LED's form;
* ``full`` / ``project`` — :class:`~ledrec.models.led_trained.TrainedLED`, the paper's training (random, SVD or
  spectral start; vectors trained, or frozen with a learned d × d projection; Mult, Mult-CSS, BPR, NS).

:class:`LED` chooses among them. ``variant="auto"`` decides by the data and the options given: a loss of
``wls`` or a ``wls_*`` option → wls; ``tuning="project"`` → project; an option only training has (``init``,
``lr``, a sampled loss, …) → full; ``epochs`` alone → full below 20,000 items (fine-tuning the closed form)
and wls's sweeps from there; ``loss="mult"`` or a ``spectral_*`` option → spectral; targets
that differ from the inputs (multi-feedback, §4.3) → full from the SVD start; otherwise the catalogue's size:
spectral below 20,000 items, wls from there (what validation preferred on the boards: docs/led.md).
``variant="spectral,wls,…"`` fits each candidate and keeps the best on ``validation``. What was chosen:
``variant_``, ``estimator_`` (the fitted member), ``params_`` (its options, presets applied) and, with
candidates, ``candidates_`` (each one's validation score). ``LED`` itself never changes a parameter.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from ledrec.config import Option
from ledrec.data.splits import EvalSet
from ledrec.errors import ConfigError
from ledrec.evaluate.ranking import evaluate
from ledrec.models.led_common import LARGE_CATALOGUE, LEDTables, preset_size
from ledrec.models.led_spectral import SpectralLED
from ledrec.models.led_trained import LEDNet, TrainedLED
from ledrec.models.led_wls import WLSLED

__all__ = ["LED", "MEMBERS", "VARIANTS", "WLSLED", "LEDNet", "SpectralLED", "TrainedLED"]
log = logging.getLogger(__name__)

VARIANTS = {"spectral": SpectralLED, "wls": WLSLED, "full": TrainedLED, "project": TrainedLED}
MEMBERS = (SpectralLED, WLSLED, TrainedLED)
_NEVER_A_SIGNAL = {"preset", "dim", "reduce", "init_scale", "svd_iter", "encoder", "random_state", "variant"}


def _union_options() -> tuple[Option, ...]:
    """Every member's options once, defaulting to None: "the member's default (or its preset's)"."""
    seen: dict[str, Option] = {}
    users: dict[str, list[str]] = {}
    for member in MEMBERS:
        for o in member.options:
            seen.setdefault(o.name, o)
            users.setdefault(o.name, []).append(member.name)
    out = []
    for name, o in seen.items():
        members = ", ".join(users[name])
        choices = tuple(dict.fromkeys(c for m in MEMBERS for p in m.options if p.name == name for c in p.choices or ()))
        default = f"; default {o.default!r}" if o.default is not None else ""
        helps = f"{o.help} [{members}{default}]"
        if name == "loss":  # LED's own spelling of the wls variant, as before the family had members
            choices, helps = (*choices, "wls"), helps + "; wls: the wls variant (ALS's weighted square loss)"
        out.append(replace(o, default=None, choices=choices or None, help=helps))
    return tuple(out)


def _only_in(member: type) -> set[str]:
    """The options no other member has."""
    others = {o.name for m in MEMBERS if m is not member for o in m.options}
    return {o.name for o in member.options} - others


class LED(LEDTables):
    """LED: user vector = mean of the history's item vectors, score = ⟨u, v_i⟩ + b_i; the member that learns
    the tables chosen by the data (``variant``) — see the module's text."""

    name = "led"
    accepts_side_matrices = True
    uses_validation = True
    options = (
        Option(
            "variant",
            str,
            "auto",
            "which of LED's family learns the tables: spectral (a closed form), wls (ALS's loss in LED's form), "
            "full or project (the paper's training), comma-separated candidates chosen on validation, or auto: by "
            f"the data (spectral below {LARGE_CATALOGUE:,} items, wls from there; full when targets differ from "
            "the inputs) and the options given",
        ),
        *_union_options(),
    )

    # ---------------------------------------------------------------- which member
    def candidates(self, n_items: int, separate_targets: bool = False) -> list[str]:
        """The variants this model would fit for a catalogue of ``n_items`` (more than one: chosen on
        validation)."""
        if self.variant != "auto":
            names = [v.strip() for v in self.variant.split(",") if v.strip()]
            unknown = [v for v in names if v not in VARIANTS]
            if unknown or not names:
                raise ConfigError(f"led: variant must be auto or among {', '.join(VARIANTS)}, not {self.variant!r}")
            return names
        given = {k for k, v in self.get_params().items() if v is not None and k not in _NEVER_A_SIGNAL}
        trained = (given & _only_in(TrainedLED)) - {"loss"} or self.loss in ("mult-css", "bpr", "ns")
        if self.loss == "wls" or given & _only_in(WLSLED):
            if trained:
                raise ConfigError(f"led: {sorted(trained)} are options of a trained LED, not of loss='wls'")
            return ["wls"]
        if self.tuning == "project":
            return ["project"]
        if trained:
            return ["full"]
        small = preset_size(self.preset or "auto", n_items) == "small"
        if "epochs" in given:  # iterations of what the size would solve for: training below, ALS's sweeps above
            return ["full" if small else "wls"]
        if self.loss == "mult" or given & _only_in(SpectralLED) - {"encoder"}:
            return ["spectral"]
        if separate_targets:
            return ["full"]
        return ["spectral" if small else "wls"]

    def member(self, variant: str, separate_targets: bool = False) -> LEDTables:
        """The unfitted member for ``variant`` with this model's options that it has (a given option it lacks
        is a ConfigError: it would be ignored)."""
        cls = VARIANTS[variant]
        own = {o.name for o in cls.options}
        given = {k: v for k, v in self.get_params().items() if v is not None and k != "variant"}
        stray = sorted(
            set(given) - own - {"random_state"} - ({"loss"} if given.get("loss") in ("wls", "mult") else set())
        )
        if stray:
            raise ConfigError(f"led: {', '.join(stray)} do(es) not apply to the {variant} variant ({cls.name})")
        params = {k: v for k, v in given.items() if k in own or k == "random_state"}
        if cls is TrainedLED:
            params["tuning"] = variant
            params.setdefault("init", "svd" if separate_targets else "spectral")
            if params.get("loss") == "wls":
                del params["loss"]
        elif cls is SpectralLED or cls is WLSLED:
            params.pop("loss", None)
        return cls(**params)

    # ---------------------------------------------------------------- fit
    def fit(
        self,
        X: Any,
        validation: EvalSet | None = None,
        *,
        targets: sp.csr_matrix | None = None,
        pretrain_matrix: sp.csr_matrix | None = None,
        negatives_matrix: sp.csr_matrix | None = None,
        show_progress: bool | None = None,
    ) -> Self:
        """Fit the chosen member (or each candidate, keeping the best on ``validation``); the arguments are
        the members' (:meth:`TrainedLED.fit`)."""
        X = self._training_matrix(X, show_progress)
        separate = targets is not None
        names = self.candidates(X.shape[1], separate)
        if len(names) > 1 and validation is None:
            raise ConfigError(f"led: choosing among {', '.join(names)} needs a validation set")
        side = {"targets": targets, "pretrain_matrix": pretrain_matrix, "negatives_matrix": negatives_matrix}
        best, best_value, scores = None, None, []
        for name in names:
            member = self.member(name, separate)
            member.item_ids, member.progress = self.item_ids, self.progress
            for hook in ("validation_score", "on_validation"):  # (a caller's selection score, a tuner's pruning)
                if getattr(self, hook, None) is not None:
                    setattr(member, hook, getattr(self, hook))
            member.fit(X, validation if isinstance(member, TrainedLED) or len(names) > 1 else None, **side)
            if len(names) > 1:  # scored on validation; the best kept (the first of equals), the others dropped
                metric = validation.selection_metric  # type: ignore[union-attr]
                value = evaluate(member.score, validation, (int(metric.split("@")[1]),))[metric]
                scores.append({"variant": name, metric: value, "params": member.params_})
                log.info("led: %s %s %.5f", name, metric, value)
                if best is not None and value <= best_value:
                    continue
                best_value = value
            best = (name, member)
        self.variant_, self.estimator_ = best  # type: ignore[misc]
        self.params_ = self.estimator_.params_
        if scores:
            self.candidates_ = scores
        e = self.estimator_
        self._set_tables(e._encoder_vectors(), e.item_vectors_, e.item_bias_, e.query_map_, e.reduction())
        self.best_epoch_, self.history_, self.train_s_ = e.best_epoch_, e.history_, e.train_s_
        for name in ("pretrain_stats_", "wls_history_", "sparse_gradients_", "similarity_table_"):
            if hasattr(e, name):
                setattr(self, name, getattr(e, name))
        return self

    # ---------------------------------------------------------------- for the harness
    def selects_on_validation(self, n_items: int) -> bool:
        """Whether fitting with validation chooses anything: among candidates, or an epoch (early stopping)."""
        names = self.candidates(n_items)
        return len(names) > 1 or self.member(names[0]).selects_on_validation(n_items)

    def effective(self, name: str, n_items: int) -> Any:
        """The value option ``name`` will have when fitting ``n_items`` items (None: the member chosen has no
        such option); ``variant``: the variant chosen."""
        names = self.candidates(n_items)
        if name == "variant":
            return ",".join(names)
        member = self.member(names[0])
        return member.effective(name, n_items) if name in {o.name for o in member.options} else None

    def refit_params(self) -> dict[str, Any]:
        """This model with the chosen variant, and a trained one's chosen number of epochs (no early stop)."""
        params = {**self.get_params(), "variant": self.variant_}
        if isinstance(self.estimator_, TrainedLED):
            refit = self.estimator_.refit_params()
            params.update({k: refit[k] for k in ("epochs", "patience", "checkpoint_dir")})
        return params

    @classmethod
    def load(cls, directory: Any, mmap: bool = False) -> LED:
        """A saved LED, of this version or of the one that was a single class (its options are all still
        LED's; its fitted reduction was kept in ``reduce``)."""
        model = super().load(directory, mmap=mmap)
        if not hasattr(model, "variant_"):
            model.variant_ = "unknown (saved before variants)"
        return model

    def score(self, X: sp.csr_matrix) -> np.ndarray:
        estimator = getattr(self, "estimator_", None)
        if isinstance(estimator, TrainedLED) and estimator.device_.type != "cpu":
            return estimator.score(X)
        return super().score(X)
