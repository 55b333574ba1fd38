"""A small, deterministic, resumable training loop shared by the PyTorch models (LED, and later VAE/DAE).

* Deterministic: every random choice of epoch ``e`` (user order, input dropout, 80/20 splits, negatives)
  comes from ``numpy.random.default_rng([seed, e])``, so a run resumed at an epoch boundary replays
  exactly what an uninterrupted run would have done.
* Resumable: with a ``checkpoint_dir``, the model, the optimiser moments, the best state so far and the
  history are written after every epoch (``.npy`` + JSON manifest, atomically; no pickle). ``fit`` with
  the same directory continues after the last finished epoch.
* Model selection: the validation metric is computed every ``eval_every`` epochs; the best state is kept
  and restored at the end; training stops after ``patience`` evaluations without improvement.
* Sparse-gradient aware: parameters listed as sparse (embedding tables looked up with ``sparse=True``)
  are updated by ``SparseAdam``, which touches only the rows of the batch; all others by ``Adam``. A step
  whose loss gives those tables dense gradients (LED finishing a sampled run with the full softmax) is
  taken by a second ``Adam`` over them instead (its own moments, fresh at the switch).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ledrec.data.splits import EvalSet
from ledrec.evaluate.ranking import evaluate
from ledrec.io import ArtifactError, load_artifact, save_artifact
from ledrec.models.base import Option, Recommender

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 50
    batch_size: int = 512  # users per step (§9.2)
    lr: float = 1e-3  # Adam (§9.2)
    eval_every: int = 1  # epochs between validation runs
    patience: int = 5  # validations without improvement before stopping; 0 = run all epochs
    seed: int = 0
    checkpoint_dir: str | None = None
    progress: bool = True


@dataclass
class TrainResult:
    best_epoch: int  # 1-based number of epochs of the returned state (0 = the initial state)
    best_metric: float | None
    epochs_run: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


# (batch rows, the epoch's rng, 0-based epoch) -> scalar loss
StepLoss = Callable[[np.ndarray, np.random.Generator, int], torch.Tensor]
Validate = Callable[[], float]  # higher is better


class Trainer:
    def __init__(self, module: nn.Module, config: TrainConfig, sparse_params: tuple[nn.Parameter, ...] = ()):
        self.module = module
        self.config = config
        sparse_ids = {id(p) for p in sparse_params}
        dense = [p for p in module.parameters() if p.requires_grad and id(p) not in sparse_ids]
        sparse = [p for p in sparse_params if p.requires_grad]
        self.sparse_params = sparse
        self.dense_optimizer = torch.optim.Adam(dense, lr=config.lr) if dense else None
        self.sparse_optimizer = torch.optim.SparseAdam(sparse, lr=config.lr) if sparse else None
        self.densified_optimizer = torch.optim.Adam(sparse, lr=config.lr) if sparse else None
        # checkpoint order: dense, sparse, sparse-when-dense
        self.optimizers: list[torch.optim.Optimizer] = [
            o for o in (self.dense_optimizer, self.sparse_optimizer, self.densified_optimizer) if o is not None
        ]

    def _step(self) -> None:
        """Each parameter group by the optimizer its gradients' layout needs."""
        if self.dense_optimizer is not None:
            self.dense_optimizer.step()
        if self.sparse_params:
            grads = [p.grad for p in self.sparse_params if p.grad is not None]
            if any(g.is_sparse for g in grads):
                self.sparse_optimizer.step()  # type: ignore[union-attr]
            elif grads:
                self.densified_optimizer.step()  # type: ignore[union-attr]

    def fit(self, n_rows: int, step_loss: StepLoss, validate: Validate | None = None) -> TrainResult:
        cfg = self.config
        start = time.perf_counter()
        state = self._resume()
        epoch, history = state["epoch"], state["history"]
        before = state["seconds"]  # training time of earlier runs of this checkpoint: the result counts all of it
        best_metric, best_epoch, best_state = state["best_metric"], state["best_epoch"], state["best_state"]
        if validate is not None and epoch == 0 and best_metric is None:
            best_metric, best_state = validate(), self._snapshot()  # epoch 0: the initial model is a candidate
            history.append({"epoch": 0, "metric": best_metric})
        stale = state["stale"]
        while epoch < cfg.epochs and not (validate is not None and cfg.patience and stale >= cfg.patience):
            rng = np.random.default_rng([cfg.seed, epoch])
            order = rng.permutation(n_rows)
            t0, losses = time.perf_counter(), []
            self.module.train()
            batches = range(0, n_rows, cfg.batch_size)
            for lo in tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not cfg.progress, leave=False):
                loss = step_loss(order[lo : lo + cfg.batch_size], rng, epoch)
                for opt in self.optimizers:
                    opt.zero_grad(set_to_none=True)
                loss.backward()
                self._step()
                losses.append(float(loss.detach()))
            epoch += 1
            record: dict[str, Any] = {
                "epoch": epoch,
                "loss": float(np.mean(losses)),
                "train_s": time.perf_counter() - t0,
            }
            self.module.eval()
            if validate is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
                metric = validate()
                record["metric"] = metric
                if best_metric is None or metric > best_metric:
                    best_metric, best_epoch, best_state, stale = metric, epoch, self._snapshot(), 0
                else:
                    stale += 1
            history.append(record)
            log.info("epoch %d: %s", epoch, record)
            if cfg.progress:
                tqdm.write(
                    f"epoch {epoch}: loss {record['loss']:.4f}"
                    + (f", validation {record['metric']:.5f}" if "metric" in record else "")
                    + f" ({record['train_s']:.1f}s)",
                    file=sys.stderr,  # stdout carries the command's JSON result only
                )
            seconds = before + time.perf_counter() - start
            self._checkpoint(epoch, history, best_metric, best_epoch, best_state, stale, seconds)
        if best_state is not None:
            self.module.load_state_dict(best_state)
        else:
            best_epoch = epoch
        return TrainResult(best_epoch, best_metric, epoch, before + time.perf_counter() - start, history)

    # ------------------------------------------------------------------ state
    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    def _checkpoint(self, epoch, history, best_metric, best_epoch, best_state, stale, seconds) -> None:
        if not self.config.checkpoint_dir:
            return
        arrays = {f"model.{k}": v.cpu().numpy() for k, v in self.module.state_dict().items()}
        if best_state is not None:
            arrays |= {f"best.{k}": v.cpu().numpy() for k, v in best_state.items()}
        groups, scalars = [], {}
        for i, opt in enumerate(self.optimizers):
            sd = opt.state_dict()
            for pid, st in sd["state"].items():
                for name, value in st.items():
                    if isinstance(value, torch.Tensor):
                        arrays[f"opt{i}.{pid}.{name}"] = value.cpu().numpy()
                    else:  # SparseAdam keeps 'step' as a Python int: restore it as one (float64 maths)
                        scalars[f"opt{i}.{pid}.{name}"] = value
            groups.append(sd["param_groups"])
        save_artifact(
            self.config.checkpoint_dir,
            "checkpoint",
            arrays,
            config=asdict(self.config),
            extra={
                "epoch": epoch,
                "history": history,
                "best_metric": best_metric,
                "best_epoch": best_epoch,
                "stale": stale,
                "seconds": seconds,
                "param_groups": groups,
                "optimizer_scalars": scalars,
            },
        )

    def _resume(self) -> dict[str, Any]:
        fresh = {
            "epoch": 0,
            "history": [],
            "best_metric": None,
            "best_epoch": 0,
            "best_state": None,
            "stale": 0,
            "seconds": 0.0,
        }
        directory = self.config.checkpoint_dir
        if not directory or not (Path(directory) / "manifest.json").is_file():
            return fresh
        arrays, manifest = load_artifact(directory, kind="checkpoint")
        saved = {k: v for k, v in manifest["config"].items() if k not in ("epochs", "progress", "checkpoint_dir")}
        mine = {k: v for k, v in asdict(self.config).items() if k not in ("epochs", "progress", "checkpoint_dir")}
        if saved != mine:
            raise ArtifactError(
                f"{directory}: checkpoint was written with {json.dumps(saved)}, not {json.dumps(mine)}; "
                "use another --checkpoint-dir or delete it"
            )
        self.module.load_state_dict(
            {k[6:]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith("model.")}
        )
        best = {k[5:]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith("best.")}
        for i, opt in enumerate(self.optimizers[: len(manifest["param_groups"])]):
            state: dict[int, dict[str, torch.Tensor]] = {}
            saved_state = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()} | manifest["optimizer_scalars"]
            for key, value in saved_state.items():
                if key.startswith(f"opt{i}."):
                    _, pid, name = key.split(".", 2)
                    state.setdefault(int(pid), {})[name] = value
            opt.load_state_dict({"state": state, "param_groups": manifest["param_groups"][i]})
        log.info("resumed from %s after epoch %d", directory, manifest["epoch"])
        return {
            "epoch": manifest["epoch"],
            "history": manifest["history"],
            "best_metric": manifest["best_metric"],
            "best_epoch": manifest["best_epoch"],
            "best_state": best or None,
            "stale": manifest["stale"],
            # checkpoints written before "seconds" was kept: the epochs' training time (validation not counted)
            "seconds": manifest.get("seconds", sum(r.get("train_s", 0.0) for r in manifest["history"])),
        }


# ---------------------------------------------------------------------- the models' side of the loop
def training_options(
    *,
    epochs: int | None,
    batch_size: int,
    lr: float | None,
    patience: int | None = 5,
    lr_help: str = "Adam learning rate",
    preset_help: str = "",
    epochs_help: str = "",
) -> tuple[Option, ...]:
    """The hyper-parameters every PyTorch recommender has, with the model's own defaults (None: decided by
    the model's preset, which ``preset_help`` describes). ``epochs_help``: a model whose starting point is a
    model already (LED's closed-form start) accepts 0 epochs and says what they mean."""
    by = lambda value: preset_help if value is None else ""  # noqa: E731
    return (
        Option("epochs", int, epochs, "maximum epochs" + epochs_help + by(epochs), low=0 if epochs_help else 1),
        Option("batch_size", int, batch_size, "users per step", low=1),
        Option("lr", float, lr, lr_help + by(lr), searchable=True, low=0.0, low_open=True),
        Option("eval_every", int, 1, "epochs between validation runs", low=1),
        Option(
            "patience",
            int,
            patience,
            "validations without improvement before early stopping (0: never; with a single candidate "
            "there is then nothing to choose, and ledrec run trains once on all of train)" + by(patience),
            low=0,
        ),
        Option("checkpoint_dir", str, "", "write a resumable checkpoint here after every epoch"),
        Option("device", str, "cpu", "torch device for training: cpu (all cores), cuda, or auto (cuda when present)"),
    )


class TorchRecommender(Recommender):
    """A recommender trained by :class:`Trainer`: checkpoints chosen on validation, early stopping, and a
    refit with the chosen number of epochs. Subclasses build a module and a step loss, call :meth:`_train`,
    and implement :meth:`_export` (module → the numpy arrays that ``score`` uses and ``save`` writes)."""

    uses_validation = True
    # optional: model -> score to maximise, used instead of the validation set's ranking metric
    validation_score: Callable[[Recommender], float] | None = None
    # optional: called with (epoch, validation metric) after every validation; may raise to stop the fit
    # (a hyper-parameter search prunes an unpromising candidate this way: ledrec.train.tune)
    on_validation: Callable[[int, float], None] | None = None
    epochs: int
    batch_size: int
    lr: float
    eval_every: int
    patience: int
    checkpoint_dir: str

    def _train(
        self,
        module: nn.Module,
        n_rows: int,
        step_loss: StepLoss,
        validation: EvalSet | None,
        sparse_params: tuple[nn.Parameter, ...] = (),
    ) -> None:
        hp = getattr(self, "params_", None) or self.get_params()  # (a model with presets: the values it fits with)
        config = TrainConfig(
            epochs=hp["epochs"],
            batch_size=hp["batch_size"],
            lr=hp["lr"],
            eval_every=hp["eval_every"],
            patience=hp["patience"],
            seed=self.random_state,
            checkpoint_dir=hp["checkpoint_dir"] or None,
            progress=self.progress,
        )
        validate = None
        custom = self.validation_score
        if custom is not None:  # a caller-defined selection score (higher is better), e.g. a click-rank

            def validate() -> float:
                self._export()
                return float(custom(self))

        elif validation is not None:
            metric = validation.selection_metric
            ks = (int(metric.split("@")[1]),)

            def validate() -> float:
                self._export()
                return evaluate(self.score, validation, ks)[metric]

        if validate is not None and self.on_validation is not None:
            measure, report, calls = validate, self.on_validation, [0]

            def validate() -> float:  # (epoch 0 is the starting model; then one call per validation)
                value = measure()
                report(calls[0] * config.eval_every, value)
                calls[0] += 1
                return value

        result = Trainer(module, config, sparse_params).fit(n_rows, step_loss, validate)
        self.best_epoch_ = result.best_epoch
        self.history_ = result.history
        self.train_s_ = result.seconds
        self._export()

    def _export(self) -> None:
        raise NotImplementedError

    def selects_on_validation(self, n_items: int) -> bool:
        """Whether a validation run would choose anything for a catalogue of ``n_items``: the best epoch,
        when training may stop early."""
        return self.effective("patience", n_items) > 0

    def effective(self, name: str, n_items: int) -> Any:
        """The value option ``name`` will have when fitting ``n_items`` items (models with presets decide
        some at fit time)."""
        return getattr(self, name)

    def refit_params(self) -> dict[str, Any]:
        """Parameters to retrain on a larger training matrix with the number of epochs chosen here. A
        checkpointed selection run gets a refit checkpoint of its own beside it (``DIR-refit``): the two train
        different matrices, and both resume when the command is run again."""
        least = next(o.low for o in self.options if o.name == "epochs")  # 0 where the start is a model itself
        params = {**self.get_params(), "epochs": max(self.best_epoch_, least), "patience": 0}
        if self.checkpoint_dir:
            params["checkpoint_dir"] = self.checkpoint_dir.rstrip("/\\") + "-refit"
        return params
