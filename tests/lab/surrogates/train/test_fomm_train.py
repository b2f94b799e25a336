"""The FOMM training loop: objective, logging, checkpoints, resume after a hard kill."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lab.surrogates.train.common import CheckpointStore, LossLog, RunRecord, StopFlag, WeightAverage
from lab.surrogates.train.fomm import AUGMENTS, Augment, PairSampler, TrainArgs, final_weights, train
from lab.surrogates.train.fomm_losses import FommObjective, LossWeights, RandomTPS
from shield.adversarial.models.fomm import FOMM, TINY

torch.set_num_threads(1)


def _clips() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8) for _ in range(3)]


def _record() -> RunRecord:
    return RunRecord(command=["test"], seed=3, config=TINY.to_dict(), train_clips=["a", "b", "c"], validation_clips=[], hyperparameters={})


def _args(out: Path, steps: int, ckpt_every: int = 2) -> TrainArgs:
    return TrainArgs(seed=3, out=out, config="tiny", batch=2, steps=steps, ckpt_every=ckpt_every, log_every=1, max_minutes=10)


def _final_params(out: Path) -> dict[str, torch.Tensor]:
    state = CheckpointStore(out).load_latest()
    assert state is not None
    return state["model"]


def test_tps_jacobian_matches_finite_differences() -> None:
    torch.manual_seed(0)
    tps = RandomTPS(batch=2, sigma_affine=0.05, sigma_tps=0.05, points=5)
    pts = torch.rand(2, 4, 2) * 1.6 - 0.8
    jac = tps.jacobian(pts.clone())
    eps = 1e-3
    for axis in (0, 1):
        d = torch.zeros(2)
        d[axis] = eps
        fd = (tps.warp_coordinates(pts + d) - tps.warp_coordinates(pts - d)) / (2 * eps)
        assert torch.allclose(jac[..., axis], fd, atol=2e-3)


def test_identity_transform_has_zero_equivariance_error() -> None:
    tps = RandomTPS(batch=1, sigma_affine=0.0, sigma_tps=0.0, points=5)
    pts = torch.rand(1, 3, 2) - 0.5
    assert torch.allclose(tps.warp_coordinates(pts), pts)
    img = torch.rand(1, 3, 16, 16)
    assert torch.allclose(tps.warp_image(img), img, atol=1e-5)


def test_objective_is_finite_and_trains_every_network() -> None:
    torch.manual_seed(0)
    model = FOMM(TINY).train()
    terms = FommObjective(model, LossWeights(ssim=1.0))(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    assert torch.isfinite(terms.total)
    terms.total.backward()
    for part in (model.kp_detector.predictor, model.kp_detector.jacobian, model.generator.dense_motion_network, model.generator.final):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads)
        assert any(g.abs().sum() > 0 for g in grads if g is not None)


def test_training_logs_checkpoints_and_records(tmp_path: Path) -> None:
    record = train(_args(tmp_path, steps=4), _clips(), _record())
    assert CheckpointStore(tmp_path).steps() == [2, 4]
    rows = LossLog(tmp_path / "losses.jsonl").read()
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(r["total"]) for r in rows)
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["steps"] == 4 == record.steps and saved["seed"] == 3
    assert saved["wall_time_s"] > 0 and "total" in saved["final_losses"]


def test_resume_after_hard_kill_continues_the_same_run(tmp_path: Path) -> None:
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    train(_args(straight, steps=6), _clips(), _record())
    # A run killed with SIGKILL after step 3: the last complete checkpoint is step 2,
    # the log has rows past it, a torn line, and a half-written temporary file.
    train(_args(broken, steps=3), _clips(), _record())
    CheckpointStore(broken).path(3).unlink()
    with (broken / "losses.jsonl").open("a") as fh:
        fh.write('{"step": 4, "tot')
    (broken / ".ckpt-00000004.999.tmp").write_bytes(b"\x00" * 10)
    record = RunRecord.load(broken)
    assert record is not None
    train(_args(broken, steps=6), _clips(), record)
    a, b = _final_params(straight), _final_params(broken)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in LossLog(broken / "losses.jsonl").read()] == [1, 2, 3, 4, 5, 6]
    assert len(RunRecord.load(broken).sessions) == 2  # type: ignore[union-attr]


def test_corrupt_newest_checkpoint_falls_back_to_previous(tmp_path: Path) -> None:
    train(_args(tmp_path, steps=4), _clips(), _record())
    store = CheckpointStore(tmp_path)
    store.path(4).write_bytes(b"truncated")
    state = store.load_latest()
    assert state is not None and state["step"] == 2


def test_stop_request_saves_and_exits(tmp_path: Path) -> None:
    class StopAfterTwo(StopFlag):
        def __init__(self) -> None:
            super().__init__()
            self.checks = 0

        @property
        def requested(self) -> bool:
            self.checks += 1
            return self.checks > 2

        @requested.setter
        def requested(self, value: bool) -> None:
            pass

    record = train(_args(tmp_path, steps=50, ckpt_every=100), _clips(), _record(), stop=StopAfterTwo())
    assert record.steps == 2
    assert CheckpointStore(tmp_path).steps() == [2]


def test_restart_with_a_new_learning_rate_decays_it(tmp_path: Path) -> None:
    train(_args(tmp_path, steps=2), _clips(), _record())
    record = RunRecord.load(tmp_path)
    assert record is not None
    lower = TrainArgs(**{**_args(tmp_path, steps=3).__dict__, "lr": 5e-5})
    train(lower, _clips(), record)
    state = CheckpointStore(tmp_path).load_latest()
    assert state is not None and state["step"] == 3
    assert all(g["lr"] == 5e-5 for g in state["optimizer"]["param_groups"])
    assert [s["lr"] for s in RunRecord.load(tmp_path).sessions] == [2e-4, 5e-5]  # type: ignore[union-attr]


def _is_clip_frame(x: torch.Tensor, clip: np.ndarray) -> bool:
    frames = torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255
    return bool(((frames - x).abs().amax(dim=(1, 2, 3)) < 1e-6).any())


def test_flip_only_sampler_returns_frames_of_one_clip() -> None:
    clip = _clips()[0]
    source, driving = PairSampler([clip], np.random.default_rng(0), Augment(flip=0.0)).batch(4)
    assert all(_is_clip_frame(s, clip) and _is_clip_frame(d, clip) for s, d in zip(source, driving, strict=True))


def test_source_motion_warps_the_source_and_keeps_the_driving_frame_real() -> None:
    clip = _clips()[0]
    source, driving = PairSampler([clip], np.random.default_rng(0), Augment(flip=0.0, move=1.0)).batch(4)
    assert all(_is_clip_frame(d, clip) for d in driving)
    assert not any(_is_clip_frame(s, clip) for s in source)
    assert source.shape == driving.shape and 0 <= float(source.min()) and float(source.max()) <= 1


def test_colour_change_is_shared_by_both_frames() -> None:
    rng = np.random.default_rng(1)
    still = np.repeat(rng.integers(30, 220, (1, 32, 32, 3), dtype=np.uint8), 3, axis=0)  # every frame the same
    source, driving = PairSampler([still], np.random.default_rng(2), Augment(flip=0.0, color=1.0)).batch(4)
    assert torch.allclose(source, driving)
    assert not any(_is_clip_frame(s, still) for s in source)


def test_sampler_draws_clips_by_their_weights() -> None:
    clips = _clips()
    sampler = PairSampler(clips, np.random.default_rng(0), Augment(flip=0.0), weights=[0.0, 1.0, 3.0])
    drawn = [next(k for k, c in enumerate(clips) if _is_clip_frame(d, c)) for d in sampler.batch(400)[1]]
    counts = np.bincount(drawn, minlength=3)
    assert counts[0] == 0 and 2.4 < counts[2] / counts[1] < 3.8  # 3:1, within sampling noise


@pytest.mark.parametrize("weights", [[1.0, 1.0], [0.0, 0.0, 0.0], [1.0, -1.0, 1.0], [1.0, float("nan"), 1.0]])
def test_sampler_refuses_weights_that_do_not_fit(weights: list[float]) -> None:
    with pytest.raises(ValueError):
        PairSampler(_clips(), np.random.default_rng(0), weights=weights)


def test_sampler_weights_follow_their_clips_past_single_frames() -> None:
    clips = _clips()
    single = clips[0][:1]  # one frame: no pair, left out with its weight
    sampler = PairSampler([single, clips[1], clips[2]], np.random.default_rng(0), Augment(flip=0.0), weights=[5.0, 0.0, 1.0])
    assert all(_is_clip_frame(d, clips[2]) for d in sampler.batch(20)[1])


def test_still_photo_choice_parses() -> None:
    from lab.surrogates.train.fomm import _parse

    assert [_parse(["--seed", "1", "--out", "x", *extra])[0].stills for extra in ([], ["--stills"], ["--stills", "all"])] == ["none", "portraits", "all"]


def test_every_named_augmentation_trains(tmp_path: Path) -> None:
    for name in AUGMENTS:
        args = dataclasses.replace(_args(tmp_path / name, steps=2), augment=name)
        record = train(args, _clips(), _record())
        assert record.steps == 2 and record.sessions[-1]["augment"] == name


def test_weight_average_follows_the_exponential_moving_average() -> None:
    linear = torch.nn.Linear(2, 2)
    layer = torch.nn.Sequential(linear, torch.nn.BatchNorm1d(2))
    average = WeightAverage(layer, decay=0.75)
    start = {k: v.clone() for k, v in layer.state_dict().items()}
    with torch.no_grad():
        linear.weight.add_(4.0)
    layer.train()(torch.randn(4, 2))  # moves the running statistics, counts a batch
    average.update(layer)
    after = layer.state_dict()
    assert torch.allclose(average.weights["0.weight"], start["0.weight"] + 1.0)  # 0.75 * w + 0.25 * (w + 4)
    expected_mean = 0.75 * start["1.running_mean"] + 0.25 * after["1.running_mean"]
    assert torch.allclose(average.weights["1.running_mean"], expected_mean)
    assert int(average.weights["1.num_batches_tracked"]) == 1  # integers are copied
    with pytest.raises(ValueError):
        WeightAverage(layer, decay=1.0)
    with pytest.raises(ValueError):
        average.load({"0.weight": start["0.weight"]})


def test_weight_average_is_checkpointed_resumed_and_exported(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(dataclasses.replace(_args(straight, steps=4), ema=0.9), _clips(), _record())
    train(dataclasses.replace(_args(resumed, steps=2), ema=0.9), _clips(), _record())
    record = RunRecord.load(resumed)
    assert record is not None
    train(dataclasses.replace(_args(resumed, steps=4), ema=0.9), _clips(), record)
    a, b = CheckpointStore(straight).load_latest(), CheckpointStore(resumed).load_latest()
    assert a is not None and b is not None
    assert a["ema_decay"] == 0.9
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])
    # The average lags the last step's weights, and it is what a checkpoint stands for.
    assert any(not torch.equal(a["ema"][k], a["model"][k]) for k in a["model"] if a["model"][k].is_floating_point())
    assert final_weights(a) is a["ema"]
    plain = tmp_path / "plain"
    train(_args(plain, steps=2), _clips(), _record())
    state = CheckpointStore(plain).load_latest()
    assert state is not None and "ema" not in state and final_weights(state) is state["model"]


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--ema", "1.5")]
    + [("--scales", v) for v in ["", "1,,0.5", "0", "1.5", "nan", "-0.5", "half"]]
    + [("--autoencode", v) for v in ["-1", "nan", "inf"]]
    + [("--perceptual", v) for v in ["-1", "nan", "inf"]]
    + [("--stills", "some")],
)
def test_impossible_settings_are_refused_before_training(tmp_path: Path, flag: str, value: str) -> None:
    from lab.surrogates.train.fomm import main

    with pytest.raises(SystemExit) as exc:
        main(["--seed", "1", "--out", str(tmp_path / "run"), flag, value])
    assert exc.value.code == 2 and not (tmp_path / "run").exists()


def test_full_resolution_scale_alone_makes_the_reconstruction_term_the_plain_l1(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = FOMM(TINY).train()
    source, driving = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    fine = FommObjective(model, LossWeights(scales=(1.0,)))(source, driving)
    assert torch.allclose(fine.reconstruction, fine.l1)
    pyramid = FommObjective(model, LossWeights())(source, driving)
    assert pyramid.reconstruction > pyramid.l1  # the coarser levels add to it
    out = tmp_path / "run"
    record = train(dataclasses.replace(_args(out, steps=2), scales=(1.0,)), _clips(), _record())
    assert record.sessions[-1]["scales"] == [1.0]


def test_autoencode_term_is_the_l1_of_the_generators_no_warp_rebuild(tmp_path: Path) -> None:
    from lab.surrogates.train.fomm_losses import autoencode

    torch.manual_seed(0)
    model = FOMM(TINY).eval()
    driving = torch.rand(2, 3, 32, 32)
    source = torch.rand(2, 3, 32, 32)
    off = FommObjective(model, LossWeights())(source, driving)
    on = FommObjective(model, LossWeights(autoencode=0.5))(source, driving)
    rebuilt = autoencode(model, driving)
    assert float(off.autoencode) == 0.0
    assert torch.allclose(on.autoencode, (rebuilt - driving).abs().mean())
    assert rebuilt.shape == driving.shape and 0 <= float(rebuilt.detach().min()) and float(rebuilt.detach().max()) <= 1
    without = on.total - 100.0 * 0.5 * on.autoencode
    assert torch.allclose(without, 100.0 * on.reconstruction + 10.0 * (on.equivariance_value + on.equivariance_jacobian), rtol=1e-5)
    record = train(dataclasses.replace(_args(tmp_path / "run", steps=2), autoencode=0.5), _clips(), _record())
    assert record.sessions[-1]["autoencode"] == 0.5
    assert "autoencode" in json.loads((tmp_path / "run" / "losses.jsonl").read_text().splitlines()[-1])


def test_perceptual_term_is_the_feature_distance_of_the_frozen_dlib_network(tmp_path: Path) -> None:
    from lab.surrogates.train.fomm_losses import DlibFeatures
    from shield.adversarial.models.dlib_resnet import DlibFaceDescriptor

    torch.manual_seed(0)
    features = DlibFeatures(DlibFaceDescriptor())
    image = torch.rand(2, 3, 32, 32)
    assert float(features.distance(image, image)) == 0.0
    assert float(features.distance(image, torch.rand(2, 3, 32, 32))) > 0.0
    with pytest.raises(ValueError, match="feature network"):
        FommObjective(FOMM(TINY), LossWeights(perceptual=0.5))

    model = FOMM(TINY).train()
    source, driving = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    off = FommObjective(model, LossWeights())(source, driving)
    assert float(off.perceptual) == 0.0
    on = FommObjective(model, LossWeights(perceptual=0.5), features)(source, driving)
    assert float(on.perceptual) > 0.0
    without = on.total - 100.0 * 0.5 * on.perceptual
    assert torch.allclose(without, 100.0 * on.reconstruction + 10.0 * (on.equivariance_value + on.equivariance_jacobian), rtol=1e-5)
    on.total.backward()
    assert all(p.grad is None for p in features.parameters())  # a fixed measure: never trained
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.generator.parameters())

    record = train(dataclasses.replace(_args(tmp_path / "run", steps=2), perceptual=0.5), _clips(), _record())
    assert record.sessions[-1]["perceptual"] == 0.5
    assert json.loads((tmp_path / "run" / "losses.jsonl").read_text().splitlines()[-1])["perceptual"] > 0.0
