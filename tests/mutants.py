"""Curated mutation check: realistic bugs that the test suite must catch.

Each :class:`Mutant` is a small source patch (an exact ``old`` snippet replaced by ``new``) and
the tests that must fail on it. ``python tests/mutants.py`` applies each mutant to a temporary
copy of the repository (one copy per parallel job; the patch is undone after its run), runs the
mutant's tests there with ``pytest -x -q -p no:cacheprovider`` and prints one line per mutant,
``<name>: killed`` (a test failed) or ``<name>: survived`` (every test passed), then
``N killed, M survived``. It exits 0 only when every mutant is killed.

A snippet that is not found exactly once, or a test file or test function that does not exist,
is an error that names the mutant: the list is kept current as the code moves
(``tests/test_mutants.py`` checks that it applies to today's code without running it).

Usage::

    python tests/mutants.py                 # every mutant, 2 parallel jobs
    python tests/mutants.py --list          # names and what each one breaks
    python tests/mutants.py --only NAME ... # some of them
    python tests/mutants.py --check         # only check that every patch applies
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Queue

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Patch:
    """Replace ``old`` (found exactly once in ``path``, relative to the repository) by ``new``."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Mutant:
    """A realistic bug and the tests that must catch it.

    Attributes
    ----------
    name : str
    why : str
        The bug in words.
    patches : tuple of Patch
    tests : tuple of str
        pytest node ids (``tests/test_x.py`` or ``tests/test_x.py::test_name``), the smallest
        selection that must fail. Slow-marked tests run only when every selection names a
        test (``::``); in a whole file they stay deselected.
    """

    name: str
    why: str
    patches: tuple
    tests: tuple


def mutant(name: str, why: str, path: str, old: str, new: str, tests) -> Mutant:
    """A one-patch mutant."""
    return Mutant(name, why, (Patch(path, old, new),), tuple(tests))


PROTOCOLS = "neurofm/eval/protocols.py"
HARNESS = "neurofm/eval/harness.py"
FINETUNE = "neurofm/eval/finetune.py"
PROBE = "neurofm/eval/probe.py"
BASELINES = "neurofm/eval/baselines.py"
METRICS = "neurofm/eval/metrics.py"
INPUTS = "neurofm/eval/inputs.py"
RECONSTRUCTION = "neurofm/objectives/reconstruction.py"

LEAK_GUARDS = "tests/test_eval_leak_guards.py"
GUARD_PROBE = f"{LEAK_GUARDS}::test_probe_and_baselines_fit_inside_the_training_part"
GUARD_FINETUNE = f"{LEAK_GUARDS}::test_finetuning_fits_and_early_stops_inside_the_training_part"
GUARD_HARNESS = f"{LEAK_GUARDS}::test_a_fold_with_a_subject_on_both_sides_raises_in_the_harness"

_SWAP_MEG = '{"meg_mag": "meg_grad", "meg_grad": "meg_mag"}.get(label, label)'
_SUBJECT_CHECK_IN_BUILDERS = Patch(
    PROTOCOLS,
    "    for f in folds:\n        check_no_subject_leak(subjects, f.train, f.test, fold=f.name)\n",
    "")
_CHECK_IN_HARNESS = Patch(HARNESS, "            check_fold(fold, task.subjects, task.sessions)\n",
                          "")

MUTANTS: tuple[Mutant, ...] = (
    # -- evaluation: what a fold's fitting steps may see ----------------------------------------
    mutant("finetune_fits_on_test_fold",
           "fine-tuning trains on the fold's test trials",
           FINETUNE, "(x, patch_valid), y, fit_idx, val_idx, groups",
           "(x, patch_valid), y, fold.test, val_idx, groups",
           [GUARD_FINETUNE]),
    mutant("finetune_early_stops_on_test_fold",
           "fine-tuning early-stops on the fold's test trials",
           FINETUNE, "(x, patch_valid), y, fit_idx, val_idx, groups",
           "(x, patch_valid), y, fit_idx, fold.test, groups",
           [GUARD_FINETUNE]),
    mutant("validation_split_swapped_by_subject",
           "the whole-subject validation split returns (validation, fit)",
           PROTOCOLS, "return train[~is_val], train[is_val]",
           "return train[is_val], train[~is_val]",
           ["tests/test_eval_protocols.py", GUARD_FINETUNE]),
    Mutant("subject_leak_check_removed_from_fold_builders",
           "cross-subject and LOSO folds are no longer leak-checked when built",
           (_SUBJECT_CHECK_IN_BUILDERS,),
           ("tests/test_eval_protocols.py",
            f"{LEAK_GUARDS}::test_a_fold_builder_that_put_a_test_trial_in_training_raises")),
    Mutant("leak_check_removed_from_harness",
           "run_method scores a fold without checking it for leaks",
           (_CHECK_IN_HARNESS,), (GUARD_HARNESS,)),
    Mutant("subject_leak_check_removed_everywhere",
           "neither the fold builders nor the harness check for subject leaks",
           (_SUBJECT_CHECK_IN_BUILDERS, _CHECK_IN_HARNESS),
           (GUARD_HARNESS,)),
    mutant("leak_check_ignores_validation_part",
           "a fold's validation part may share subjects with its test side",
           PROTOCOLS, "check_no_subject_leak(subjects, fold.fitting, fold.test",
           "check_no_subject_leak(subjects, fold.train, fold.test",
           ["tests/test_eval_protocols.py",
            (f"{LEAK_GUARDS}::test_a_validation_part_sharing_a_subject_with_the_test_side_raises"
             "_in_the_harness")]),
    mutant("session_leak_check_removed",
           "cross-session folds are not checked for a session on both sides",
           PROTOCOLS, "    if fold.session_level:\n        check_no_session_leak(",
           "    if False:\n        check_no_session_leak(",
           ["tests/test_eval_protocols.py"]),
    mutant("official_split_trains_on_validation",
           "an official split's validation trials are also training trials",
           PROTOCOLS, 'train, test = np.flatnonzero(split == "train"), ',
           'train, test = np.flatnonzero(np.isin(split, ["train", "val"])), ',
           ["tests/test_eval_protocols.py"]),
    mutant("probe_fits_on_every_trial",
           "the linear probe is fitted on all trials, the test side included",
           PROBE, "return fit_probe(z[fold.train], y[fold.train], groups=subjects[fold.train],",
           "return fit_probe(z, y, groups=subjects,",
           [GUARD_PROBE]),
    mutant("probe_chooses_penalty_on_test",
           "the probe's penalty is chosen on the test side instead of the validation part",
           PROBE, "else (z[fold.val], y[fold.val])", "else (z[fold.test], y[fold.test])",
           [GUARD_PROBE]),
    mutant("probe_inner_cv_mixes_subjects",
           "the probe's inner C search splits trials, not subjects (subjects leak into its "
           "validation folds)",
           PROBE, "if groups is not None and np.unique(groups).size >= n_splits:",
           "if False:", [GUARD_PROBE]),
    mutant("fbcsp_fits_csp_on_test",
           "filter-bank CSP filters are fitted on the test trials too",
           BASELINES, "csp.fit(band[fold.train], y[fold.train])", "csp.fit(band[order], y[order])",
           [GUARD_PROBE]),
    mutant("supervised_baseline_early_stops_on_test",
           "EEGNet / ShallowFBCSPNet early-stop on the fold's test trials",
           BASELINES, "(X,), y, fit_idx, val_idx,", "(X,), y, fit_idx, fold.test,",
           [GUARD_PROBE]),
    # -- evaluation: scores ----------------------------------------------------------------------
    mutant("metrics_get_truth_and_prediction_swapped",
           "the harness scores (prediction, truth) instead of (truth, prediction)",
           HARNESS, "compute_metrics(task.kind, y_true, pred, proba,",
           "compute_metrics(task.kind, pred, y_true, proba,",
           [f"{LEAK_GUARDS}::test_the_harness_scores_truth_against_prediction"]),
    mutant("balanced_accuracy_is_plain_accuracy",
           "balanced accuracy reports plain accuracy",
           METRICS, '"balanced_accuracy": float(recall.mean()),',
           '"balanced_accuracy": float(np.trace(confusion) / y_true.size),',
           ["tests/test_eval_metrics.py"]),
    mutant("auroc_scores_the_negative_class",
           "AUROC / AUC-PR rank by the negative class's probability",
           METRICS, ".reshape(len(y_true), -1)[:, -1]", ".reshape(len(y_true), -1)[:, 0]",
           ["tests/test_eval_metrics.py"]),
    mutant("confidence_interval_without_sqrt_n",
           "the 95 % interval uses the std instead of the standard error",
           METRICS, "* std / math.sqrt(n)) if n > 1", "* std) if n > 1",
           ["tests/test_eval_metrics.py"]),
    # -- evaluation inputs ------------------------------------------------------------------------
    mutant("eval_inputs_swap_mag_and_grad_scales",
           "the evaluation input path scales magnetometers as gradiometers and back",
           INPUTS, "scales = np.array([spec.scales[label] for label in labels])",
           f"scales = np.array([spec.scales[{_SWAP_MEG}] for label in labels])",
           ["tests/test_eval_inputs.py"]),
    mutant("lazy_eval_inputs_swap_mag_and_grad_scales",
           "recording windows left on disk scale magnetometers as gradiometers and back",
           "neurofm/eval/window_inputs.py",
           "scales = np.array([spec.scales[label] for label in labels])",
           f"scales = np.array([spec.scales[{_SWAP_MEG}] for label in labels])",
           ["tests/test_eval_inputs.py::test_meg_windows_left_on_disk_equal_their_prepared_windows"]),
    mutant("eval_inputs_skip_the_notch",
           "the evaluation input path drops the model's mains notch",
           INPUTS, "preprocess_trials(X[:, keep], float(sfreq), scales, spec,",
           "preprocess_trials(X[:, keep], float(sfreq), scales, replace(spec, line_freq=None),",
           ["tests/test_eval_inputs.py"]),
    mutant("padding_patch_marked_valid",
           "a patch that starts at the end of the signal is marked as holding signal",
           "neurofm/data/windows.py", "valid = np.broadcast_to(np.arange(n) * p < t, (e, n))",
           "valid = np.broadcast_to(np.arange(n) * p <= t, (e, n))",
           ["tests/test_data_windows.py"]),
    # -- objectives and the tokenizer -------------------------------------------------------------
    mutant("tokenizer_amplitude_loss_adds",
           "the tokenizer's relative error uses pred + target",
           "neurofm/tokenizer/model.py",
           "return ((pred - target) ** 2 * w).sum() / (target ** 2 * w)",
           "return ((pred + target) ** 2 * w).sum() / (target ** 2 * w)",
           ["tests/test_tokenizer_targets.py"]),
    mutant("spectral_target_phase_flipped",
           "the amplitude-weighted phase term conjugates the target's phasor",
           RECONSTRUCTION, "target_unit = target_spec / (target_amp + tiny)",
           "target_unit = target_spec.conj() / (target_amp + tiny)",
           ["tests/test_objectives_spectral.py::test_phase_error_of_an_eighth_cycle_shift"]),
    mutant("spectral_phase_weighted_by_prediction",
           "the phase error is weighted by the prediction's amplitude, not the target's",
           RECONSTRUCTION, "weight = target_amp.detach()", "weight = pred_amp.detach()",
           [("tests/test_objectives_spectral.py::test_phase_errors_are_weighted_by_the_target"
             "_amplitude_not_the_prediction")]),
    mutant("reconstruction_scores_visible_tokens",
           "the masked-reconstruction loss sums the error of every real token",
           RECONSTRUCTION, "loss = (err * patch_mask).sum() / max(counts.masked, 1.0)",
           "loss = (err * real).sum() / max(counts.masked, 1.0)",
           ["tests/test_objectives_spectral.py"]),
    mutant("masking_touches_padding",
           "padding channels and patches can be masked (and scored)",
           "neurofm/objectives/masking.py", "return mask & real_tokens(chan_mask, patch_valid)",
           "return mask", ["tests/test_objectives_masking.py"]),
    # -- data, corpus, training -------------------------------------------------------------------
    mutant("eeg_scale_in_microvolts",
           "EEG is scaled to µV (1.0 = 1 µV) instead of 1.0 = 100 µV",
           "neurofm/data/spec.py", 'DEFAULT_SCALES = {"eeg": 1e4,', 'DEFAULT_SCALES = {"eeg": 1e6,',
           ["tests/test_data_scales.py"]),
    mutant("sampler_gives_every_rank_the_same_windows",
           "every rank trains on the first rank's share of the global batch",
           "neurofm/corpus/sampler.py", "np.array_split(batch, self.world_size)[self.rank]",
           "np.array_split(batch, self.world_size)[0]", ["tests/test_corpus_sampler.py"]),
    mutant("warmup_starts_at_zero",
           "the first warm-up step has learning rate 0 (off by one)",
           "neurofm/train/schedule.py", "return (step + 1) / warmup_steps",
           "return step / warmup_steps", ["tests/test_train_config.py"]),
    mutant("resume_forgets_torch_rng",
           "a resumed run does not restore torch's random state (dropout differs)",
           "neurofm/train/checkpoint.py", '    torch.set_rng_state(state["torch"])\n', "",
           ["tests/test_train_checkpoint.py"]),
    mutant("demo_pretraining_lr_1000x_too_small",
           "the demo pretrains with a learning rate 1000 times too small",
           "neurofm/demo/settings.py", "    lr: float = 1e-3\n", "    lr: float = 1e-6\n",
           [("tests/test_demo.py::test_the_demo_pretraining_settings_make_the_loss_fall_within_12"
             "_steps")]),
    mutant("demo_check_ignores_the_gain",
           "the demo's quality gate passes a pretrained probe no better than random init",
           "neurofm/demo/check.py", 'gain["gain"] >= min_gain - 1e-12', 'gain["gain"] >= -1.0',
           ["tests/test_demo_check.py"]),
    # -- simulation, reports, published checkpoints ----------------------------------------------
    mutant("erp_p300_negative",
           "the simulated P300 of oddball targets is a negative deflection",
           "neurofm/simulate/tasks.py", "amp = 350.0 * effect", "amp = -350.0 * effect",
           [("tests/test_simulate_recording.py::test_erp_targets_carry_a_positive_parietal_p300_of"
             "_realistic_size")]),
    mutant("confusion_normalised_by_predicted_class",
           "the confusion matrix is normalised per predicted class instead of per true class",
           "neurofm/eval/report.py", "norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)",
           "norm = cm / np.maximum(cm.sum(0, keepdims=True), 1)",
           ["tests/test_eval_report.py"]),
    mutant("checkpoint_folder_prefers_pickles",
           "a checkpoint folder's pretrained_weights.pth wins over its model.safetensors",
           "neurofm/hub/checkpoints.py",
           '("model.safetensors", "pytorch_model.bin", "pretrained_weights.pth")',
           '("pretrained_weights.pth", "pytorch_model.bin", "model.safetensors")',
           ["tests/test_hub_checkpoints.py"]),
    mutant("restarted_ranks_share_the_first_attempts_store_keys",
           "after a torchrun elastic restart the new ranks read the dead ranks' gloo addresses",
           "neurofm/train/distributed.py", 'f"neurofm/attempt-{attempt}"', '"neurofm/attempt"',
           ["tests/test_train_torchrun.py::"
            "test_torchrun_restarts_a_dead_rank_from_the_last_checkpoint"]),
    # -- fused CPU kernels -------------------------------------------------------------------------
    mutant("dropout_backward_draws_a_new_mask",
           "dropout's backward applies a fresh mask instead of regenerating the forward's",
           "neurofm/nn/dropout_kernels.py",
           "return _apply_mask(grad, g_x, factors, ctx.seed, ctx.thr), None, None, None, None",
           "return _apply_mask(grad, g_x, factors, draw_seed(), ctx.thr), None, None, None, None",
           ["tests/test_nn_dropout_kernels.py"]),
    mutant("dropout_blocks_repeat_one_mask",
           "every 16,384-element block of a dropout call (and every attention head) draws the "
           "same random words",
           "neurofm/nn/kernel_random.h", "splitmix64(seed) ^ (stream * 2 * LANES)",
           "splitmix64(seed)", ["tests/test_nn_dropout_kernels.py"]),
    mutant("gelu_slope_forgets_the_density_term",
           "the fused GELU's backward uses CDF(h) for gelu'(h) (drops h * density(h))",
           "neurofm/nn/dropout_kernels.c", "store_##S(slope, i, cdf + x * density);",
           "store_##S(slope, i, cdf);", ["tests/test_nn_dropout_kernels.py"]),
    mutant("residual_dropout_ignores_drop_path",
           "the fused residual dropout applies the dropout mask but not the drop-path factors",
           "neurofm/nn/dropout_kernels.py", "factors.mul_(path.reshape(items))",
           "factors.mul_(torch.ones_like(path).reshape(items))",
           ["tests/test_nn_dropout_kernels.py"]),
    mutant("attention_backward_forgets_the_dropout_mask",
           "the fused attention's backward takes the gradient of the weights before dropout as "
           "that of the dropped weights",
           "neurofm/nn/attention_kernels.c", "dwi[j] *= w->f[j];", "dwi[j] *= (CT)1;",
           ["tests/test_nn_attention_kernels.py"]),
    mutant("attention_backward_draws_a_new_mask",
           "the fused attention's backward regenerates the mask from a fresh seed",
           "neurofm/nn/attention_kernels.py", "geo.data_ptr(), ctx.scale, ctx.factor, ctx.seed,",
           "geo.data_ptr(), ctx.scale, ctx.factor, draw_seed(),",
           ["tests/test_nn_attention_kernels.py"]),
    mutant("scan_fallback_gates_in_bf16",
           "without the kernels a bf16 gate is applied in bf16 (silu rounded, y in float32): the "
           "two paths disagree in value and dtype",
           "neurofm/nn/scan.py", "y = (y * F.silu(z.to(y.dtype))).to(z.dtype)",
           "y = y * F.silu(z)", [("tests/test_nn_scan.py::"
                                  "test_a_bf16_gate_gives_the_float32_scan_rounded_once_in_value_"
                                  "and_gradients")]),
    mutant("attention_attends_to_padded_keys",
           "the fused attention ignores the key-padding mask (padded channels leak into real ones)",
           "neurofm/nn/attention_kernels.c",
           "w->ok[j] = valid == NULL || valid[j] ? 1 : 0;", "w->ok[j] = 1;",
           ["tests/test_nn_attention_kernels.py"]),
)


class MutantListError(ValueError):
    """The curated list does not apply to this code (a snippet or a test moved)."""


def _test_exists(root: Path, node: str) -> str | None:
    """Why the pytest node id ``node`` does not exist under ``root`` (None when it does)."""
    path, _, name = node.partition("::")
    file = root / path
    if not file.is_file():
        return f"no test file {path}"
    if name and not re.search(rf"^(async )?def {re.escape(name.split('[')[0])}\(",
                              file.read_text(encoding="utf-8"), re.MULTILINE):
        return f"{path} has no test {name}"
    return None


def check_patches(root: Path = ROOT, mutants=MUTANTS) -> None:
    """Check that every mutant applies to the code under ``root`` and names real tests.

    Raises
    ------
    MutantListError
        Naming each mutant whose snippet is not found exactly once (or is unchanged by its
        patch), whose test does not exist, or whose name is used twice.
    """
    problems = []
    seen = set()
    for m in mutants:
        if m.name in seen:
            problems.append(f"{m.name}: the name is used twice")
        seen.add(m.name)
        if not m.tests:
            problems.append(f"{m.name}: no test selected")
        for patch in m.patches:
            file = root / patch.path
            if not file.is_file():
                problems.append(f"{m.name}: no file {patch.path}")
                continue
            count = file.read_text(encoding="utf-8").count(patch.old)
            if count != 1:
                where = "not found" if count == 0 else f"found {count} times"
                problems.append(f"{m.name}: the snippet {patch.old.strip()[:60]!r} is {where} in "
                                f"{patch.path}; update the mutant to today's code")
            if patch.old == patch.new:
                problems.append(f"{m.name}: the patch of {patch.path} changes nothing")
        for node in m.tests:
            missing = _test_exists(root, node)
            if missing:
                problems.append(f"{m.name}: {missing}")
    if problems:
        raise MutantListError("The curated mutant list does not apply:\n  "
                              + "\n  ".join(problems))


def _tracked_files(root: Path) -> list[str]:
    """Files of the working tree that git does not ignore (all files but .git without git)."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                              "-z"], cwd=root, capture_output=True, check=True).stdout
        return [f for f in out.decode().split("\0") if f and (root / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                and ".git" not in p.parts and "__pycache__" not in p.parts]


def copy_tree(root: Path, dest: Path) -> Path:
    """Copy the repository's files (no caches, no .git) to ``dest``."""
    for name in _tracked_files(root):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    return dest


def _apply(copy: Path, patches) -> dict[Path, str]:
    """Apply ``patches`` in ``copy``; returns the original text of each file changed."""
    originals: dict[Path, str] = {}
    for patch in patches:
        file = copy / patch.path
        current = file.read_text(encoding="utf-8")
        originals.setdefault(file, current)
        file.write_text(current.replace(patch.old, patch.new, 1), encoding="utf-8")
    return originals


def _restore(originals: dict[Path, str]) -> None:
    for file, text in originals.items():
        file.write_text(text, encoding="utf-8")


def _environment(copy: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env.update(PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg",
               NEUROFM_CACHE=str(copy / ".neurofm-cache"), OMP_NUM_THREADS="1",
               MNE_LOGGING_LEVEL="WARNING")
    return env


def run_tests(copy: Path, tests, timeout: float) -> tuple[int | None, str]:
    """Run ``tests`` in ``copy``: (pytest's exit status or None on timeout, its output's tail)."""
    # A slow-marked test runs when every selection names a test (pyproject's addopts deselect
    # slow tests); a whole file keeps them deselected (tests/test_demo.py holds the quick demo).
    markers = ["-m", ""] if all("::" in t for t in tests) else []
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *markers,
               "--no-header", *tests]
    try:
        proc = subprocess.run(command, cwd=copy, env=_environment(copy), capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:g} s"
    return proc.returncode, (proc.stdout + proc.stderr)[-3000:]


def verdict(status: int | None) -> str:
    """``killed`` (a test failed, errored or hung), ``survived`` (all passed) or ``error``."""
    if status is None or status == 1:
        return "killed"
    if status == 0:
        return "survived"
    return "error"  # 2 interrupted (e.g. a collection error), 3 internal, 4 usage, 5 no tests


def run_mutants(mutants, *, jobs: int = 2, timeout: float = 900.0, show=print,
                verbose: bool = False) -> dict[str, str]:
    """Run every mutant in ``jobs`` parallel copies; returns name -> verdict."""
    results: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="neurofm-mutants-") as tmp:
        copies: Queue = Queue()
        for i in range(max(1, jobs)):
            copies.put(copy_tree(ROOT, Path(tmp) / f"copy{i}"))

        def one(m: Mutant) -> None:
            copy = copies.get()
            try:
                originals = _apply(copy, m.patches)
                start = time.perf_counter()
                try:
                    status, tail = run_tests(copy, m.tests, timeout)
                finally:
                    _restore(originals)
                result = verdict(status)
                results[m.name] = result
                line = f"{m.name}: {result}"
                if verbose or result == "error":
                    line += f"  ({time.perf_counter() - start:.0f} s, pytest exit {status})"
                show(line)
                if result == "error":
                    show("    " + tail.strip().replace("\n", "\n    "))
            finally:
                copies.put(copy)

        with ThreadPoolExecutor(max(1, jobs)) as pool:
            list(pool.map(one, mutants))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these mutants only")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--check", action="store_true",
                        help="only check that every mutant applies to today's code")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="parallel pytest processes (default: 2, or 1 on one core)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds one mutant's tests may take; longer counts as killed")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="add each mutant's time and pytest exit status")
    args = parser.parse_args(argv)
    if args.list:
        for m in MUTANTS:
            print(f"{m.name}: {m.why} [{', '.join(m.tests)}]")
        return 0
    chosen = MUTANTS
    if args.only:
        known = {m.name for m in MUTANTS}
        unknown = sorted(set(args.only) - known)
        if unknown:
            print(f"error: unknown mutant(s) {', '.join(unknown)}; see --list", file=sys.stderr)
            return 2
        chosen = tuple(m for m in MUTANTS if m.name in args.only)
    try:
        check_patches(ROOT, chosen)
    except MutantListError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{len(chosen)} mutants apply to this code")
        return 0
    start = time.perf_counter()
    results = run_mutants(chosen, jobs=args.jobs, timeout=args.timeout, verbose=args.verbose)
    killed = sum(v == "killed" for v in results.values())
    survived = sum(v == "survived" for v in results.values())
    errors = sum(v == "error" for v in results.values())
    if args.verbose:
        print(f"({time.perf_counter() - start:.0f} s with {args.jobs} job(s))")
    print(f"{killed} killed, {survived} survived" + (f", {errors} errors" if errors else ""))
    return 0 if killed == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
