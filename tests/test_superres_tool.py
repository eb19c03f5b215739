"""``python -m matnet_torch.superres`` train / eval / upscale on tiny generated images (seconds), --resume,
--help, and one clear line for each kind of bad input."""
import json
import re

import numpy
import pytest
import torch
from PIL import Image

from matnet_torch.apps.common.checkpoint import load_checkpoint, save_checkpoint
from matnet_torch.apps.superres import cli, training_loop
from matnet_torch.apps.superres.config import config_from_args, objective_weights
from matnet_torch.data.images import load_image, save_image

# A small network and few patches, so that a training run takes about a second.
TINY = ["--patch-size", "7", "--hidden", "4x4", "--patches", "300", "--batch-size", "50", "--threads", "1"]


def smooth_image(channels, height, width, seed):
    """A random image with structure at several scales (bicubic-upsampled noise plus a ramp), in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, channels, height // 4, width // 4, generator=generator)
    image = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)[0]
    ramp = torch.linspace(0, 0.3, width).view(1, 1, width)
    return (0.7 * image + ramp).clamp(0, 1)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """train/ (a colour and a grey image), test/ (the same kinds, other sizes)."""
    root = tmp_path_factory.mktemp("superres_images")
    for split, sizes in (("train", [(40, 44), (36, 32)]), ("test", [(30, 34), (28, 28)])):
        (root / split).mkdir()
        for index, (channels, (height, width)) in enumerate(zip((3, 1), sizes)):
            save_image(str(root / split / f"{split}{index}.png"), smooth_image(channels, height, width, seed=10 * index + len(split)))
    return root


def superres(*arguments):
    """cli.main's exit status."""
    return cli.main([str(argument) for argument in arguments])


def assert_one_line(stderr, pattern):
    assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    assert re.match(r"matnet_torch\.superres: " + pattern, stderr), stderr


@pytest.fixture(scope="module")
def model_dir(folders, tmp_path_factory):
    out = tmp_path_factory.mktemp("superres_model")
    assert superres("train", "--images", folders / "train", "--out", out, "--epochs", "2", *TINY) == 0
    return out


def test_train_writes_checkpoint_metrics_and_weights(model_dir):
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["config"]["patch_size"] == 7 and metrics["config"]["scale"] == 2 and len(metrics["history"]) == 2
    assert metrics["training_images"] == ["train0.png", "train1.png"] and metrics["train_seconds"] > 0
    assert all(record["loss_total"] > 0 for record in metrics["history"])
    assert (model_dir / "weights.png").stat().st_size > 0
    checkpoint = load_checkpoint(model_dir / "checkpoint.pt", "superres")
    assert checkpoint["epoch"] == 2


def test_eval_prints_and_writes_both_psnrs(model_dir, folders, tmp_path, capsys):
    assert superres("eval", "--model", model_dir, "--images", folders / "test", "--out", tmp_path, "--stride", "2") == 0
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "eval.json").read_text())
    assert [row["image"] for row in results["images"]] == ["test0.png", "test1.png"] and results["border"] == 2
    for row in results["images"]:
        assert row["difference"] == pytest.approx(row["matnet_psnr"] - row["bicubic_psnr"])
        assert re.search(rf"{row['image']}\s+{row['matnet_psnr']:.2f}\s+{row['bicubic_psnr']:.2f}\s+{row['difference']:+.2f}", printed)
        assert (tmp_path / f"comparison_{row['image'][:-4]}.png").stat().st_size > 0
    assert "average" in printed and "MatNet beats bicubic on" in printed


@pytest.mark.parametrize("channels, size", [(3, (13, 10)), (1, (9, 17))], ids=["colour", "grey"])
def test_upscale_writes_an_image_of_twice_the_size(model_dir, tmp_path, channels, size):
    source, target = tmp_path / "in.png", tmp_path / "out.png"
    save_image(str(source), smooth_image(channels, *size, seed=3))
    assert superres("upscale", source, target, "--model", model_dir) == 0
    upscaled = load_image(str(target))
    assert upscaled.shape == (channels, 2 * size[0], 2 * size[1])


def test_train_and_eval_with_derivative_weight_and_contrast_normalisation(folders, tmp_path, capsys):
    """--derivative-weight 0 leaves the derivatives' decoders without a reconstruction term (their
    matrices then change by weight decay alone); --contrast-norm reaches eval's estimate."""
    out = tmp_path / "model"
    assert superres("train", "--images", folders / "train", "--out", out, "--epochs", "2", *TINY,
                    "--derivative-weight", "0", "--contrast-norm", "0.02", "--detail-gain", "0.5") == 0
    checkpoint = load_checkpoint(out / "checkpoint.pt", "superres")
    assert checkpoint["config"]["derivative_weight"] == 0 and checkpoint["config"]["contrast_norm"] == 0.02
    assert checkpoint["model"]["decoders.1.bias"].eq(0).all()  # no gradient reached C_2 (biases are not decayed)
    assert not checkpoint["model"]["decoders.0.bias"].eq(0).all()
    assert superres("eval", "--model", out, "--images", folders / "test", "--out", tmp_path, "--stride", "2") == 0
    assert "average" in capsys.readouterr().out


def test_resume_continues_bit_for_bit(folders, tmp_path, monkeypatch):
    """Two epochs straight == one epoch, an interruption, then --resume."""
    common = ["train", "--images", folders / "train", "--epochs", "2", "--seed", "4", *TINY]
    assert superres(*common, "--out", tmp_path / "straight") == 0
    save = training_loop.save_training_state

    def save_then_interrupt(*arguments):
        save(*arguments)
        raise KeyboardInterrupt  # as if the run were stopped right after its first checkpoint

    monkeypatch.setattr(training_loop, "save_training_state", save_then_interrupt)
    assert superres(*common, "--out", tmp_path / "resumed") == 130  # "interrupted"
    monkeypatch.setattr(training_loop, "save_training_state", save)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt", "superres")["epoch"] == 1
    assert superres(*common, "--out", tmp_path / "resumed", "--resume") == 0
    final = [load_checkpoint(tmp_path / name / "checkpoint.pt", "superres") for name in ("straight", "resumed")]
    for name, tensor in final[0]["model"].items():
        assert torch.equal(final[1]["model"][name], tensor), name
    strip = [[{k: v for k, v in record.items() if k not in ("seconds", "cpu_seconds")} for record in f["history"]] for f in final]
    assert strip[0] == strip[1]


def test_resume_refuses_other_options(model_dir, folders, capsys):
    arguments = ["train", "--images", folders / "train", "--out", model_dir, "--epochs", "2", *TINY]
    assert superres(*arguments, "--lr", "0.1", "--resume") == 2
    assert_one_line(capsys.readouterr().err, r"--resume with options that differ from .*--lr: 0\.01 -> 0\.1$")
    assert superres(*arguments) == 2
    assert_one_line(capsys.readouterr().err, r".*checkpoint\.pt exists; pass --resume")


@pytest.mark.parametrize(
    "command, options",
    [
        ("train", ["--scale", "--patch-size", "--hidden", "--activation", "--weight-decay", "--sparsity-target",
                   "--decoder-activation", "--sparsity-weight", "--derivative-weight", "--patches", "--intensity-scale", "--protocol", "--image-input", "--target", "--contrast-norm", "--detail-gain", "--optimizer", "--lr", "--schedule",
                   "--batch-size", "--epochs", "--images", "--seed", "--threads", "--out", "--resume"]),
        ("eval", ["--model", "--images", "--protocol", "--stride", "--border", "--scale", "--threads", "--out"]),
        ("upscale", ["IN", "OUT", "--model", "--stride", "--scale", "--threads"]),
    ],
)
def test_help_of_each_command(command, options, capsys):
    with pytest.raises(SystemExit) as exit_info:
        superres(command, "--help")
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in options:
        assert option in text, option


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "case, status, pattern",
    [
        ("missing-input", 1, r".*missing\.png: no such image file$"),
        ("not-an-image", 1, r".*notes\.png: not a readable image"),
        ("smaller-than-a-patch", 1, r".*small\.png: image of 3×5 pixels is too small: ×2 upscaling with 7×7 patches needs at least 4×4$"),
        ("other-scale", 2, r"--scale 3, but the model in .* was trained for --scale 2$"),
        ("mnist-checkpoint", 1, r".*checkpoint\.pt: a 'mnist' checkpoint, not a 'superres' one$"),
        ("missing-model", 1, r".*nowhere: no such model directory$"),
        ("other-configuration", 1, r".*checkpoint\.pt: does not hold the super-resolution network its configuration describes: RuntimeError"),
    ],
)
def test_upscale_bad_input_is_one_line(model_dir, tmp_path, capsys, case, status, pattern):
    source, model = tmp_path / "in.png", model_dir
    save_image(str(source), smooth_image(3, 12, 12, seed=0))
    extra = []
    if case == "missing-input":
        source = tmp_path / "missing.png"
    elif case == "not-an-image":
        source = _write(tmp_path / "notes.png", b"these are not pixels\n")
    elif case == "smaller-than-a-patch":
        source = tmp_path / "small.png"
        Image.new("RGB", (5, 3)).save(source)
    elif case == "other-scale":
        extra = ["--scale", "3"]
    elif case == "mnist-checkpoint":
        model = tmp_path / "mnist"
        model.mkdir()
        save_checkpoint(model / "checkpoint.pt", {"config": {}}, "mnist")
    elif case == "missing-model":
        model = tmp_path / "nowhere"
    elif case == "other-configuration":  # weights of a 4×4 hidden layer under a config saying 5×5
        model = tmp_path / "edited"
        model.mkdir()
        checkpoint = load_checkpoint(model_dir / "checkpoint.pt", "superres")
        checkpoint["config"]["hidden"] = [5, 5]
        save_checkpoint(model / "checkpoint.pt", checkpoint, "superres")
    assert superres("upscale", source, tmp_path / "out.png", "--model", model, *extra) == status
    assert_one_line(capsys.readouterr().err, pattern)


@pytest.mark.parametrize(
    "case, arguments, status, pattern",
    [
        ("folder-without-images", ["--images", "{empty}"], 1, r".*empty: no image files"),
        ("missing-folder", ["--images", "{tmp}/absent"], 1, r".*absent: no such folder of images$"),
        ("image-smaller-than-a-patch", ["--images", "{small}"], 1,
         r".*tiny\.png: image of 6×40 pixels is too small: training with --patch-size 7 at --scale 2 needs at least 8×8$"),
        ("sparsity-without-sigmoid", ["--activation", "tanh"], 2, r"--sparsity-weight must be 0 unless --activation is sigmoid"),
        ("bad-scale", ["--scale", "1"], 2, r"--scale must be an integer >= 2, got 1$"),
        ("bad-hidden", ["--hidden", "4by4"], 2, r"argument --hidden: expected a matrix size"),
        ("contrast-with-image-target", ["--target", "image", "--contrast-norm", "0.02"], 2,
         r"--contrast-norm must be 0 unless --target detail \(the normalised patch has lost the mean an image target needs\), got 0\.02$"),
        ("srcnn-with-contrast", ["--architecture", "srcnn", "--patch-size", "15", "--contrast-norm", "0.02"], 2,
         r"--contrast-norm must be 0 with --architecture srcnn, got 0\.02$"),
        ("negative-derivative-weight", ["--derivative-weight", "-1"], 2, r"--derivative-weight must be a finite number >= 0, got -1\.0$"),
    ],
)
def test_train_bad_input_is_one_line(folders, tmp_path, capsys, case, arguments, status, pattern):
    (tmp_path / "empty").mkdir()
    (tmp_path / "small").mkdir()
    save_image(str(tmp_path / "small" / "tiny.png"), torch.rand(1, 6, 40))
    arguments = [a.format(empty=tmp_path / "empty", small=tmp_path / "small", tmp=tmp_path) for a in arguments]
    if "--images" not in arguments:
        arguments += ["--images", str(folders / "train")]
    assert superres("train", "--out", tmp_path / "run", "--epochs", "1", *TINY, *arguments) == status
    assert_one_line(capsys.readouterr().err, pattern)


def test_eval_rejects_a_border_that_leaves_nothing(model_dir, folders, tmp_path, capsys):
    assert superres("eval", "--model", model_dir, "--images", folders / "test", "--out", tmp_path, "--border", "14") == 2
    assert_one_line(capsys.readouterr().err, r"--border 14 leaves no pixels of .*test1\.png \(28×28\)$")


def test_eval_rejects_a_test_image_smaller_than_a_patch(model_dir, tmp_path, capsys):
    (tmp_path / "images").mkdir()
    save_image(str(tmp_path / "images" / "small.png"), smooth_image(3, 6, 20, seed=1))
    assert superres("eval", "--model", model_dir, "--images", tmp_path / "images", "--out", tmp_path) == 1
    assert_one_line(capsys.readouterr().err, r".*small\.png: image of 6×20 pixels is too small: evaluating ×2 with 7×7 patches needs at least 8×8$")


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_intensity_scale_divides_lambda_and_beta_by_its_square(scale):
    weights = objective_weights({"intensity_scale": scale, "weight_decay": 0.001, "sparsity_target": 0.05, "sparsity_weight": 1.0})
    assert weights == {"reconstruction_weights": [1.0] * 5, "weight_decay": 0.001 / scale**2, "sparsity_target": 0.05,
                       "sparsity_weight": 1.0 / scale**2}


@pytest.mark.parametrize("optimizer", ["sgd", "lbfgs"])
def test_train_with_the_other_optimizers(folders, tmp_path, optimizer):
    # --batch-size after TINY's: LBFGS takes its large default batch unless told otherwise
    assert superres("train", "--images", folders / "train", "--out", tmp_path, "--epochs", "1", *TINY,
                    "--optimizer", optimizer, "--batch-size", "300") == 0
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert history[0]["loss_total"] > 0 and history[0]["lr"] == {"sgd": 0.2, "lbfgs": 1.0}[optimizer]


def _truncated_png(path):
    save_image(str(path), smooth_image(3, 40, 40, seed=2))
    content = path.read_bytes()
    return _write(path, content[: len(content) // 2])


@pytest.mark.parametrize(
    "mode, channels",
    [("I;16", 1), ("P", 3), ("CMYK", 3), ("LA", 1), ("RGBA", 3)],
    ids=["16-bit-grey", "palette", "cmyk-jpeg", "grey-alpha", "rgba"],
)
def test_upscale_reads_other_pixel_formats(model_dir, tmp_path, mode, channels):
    rgb = (smooth_image(3, 12, 10, seed=5).permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    image = Image.fromarray(rgb)
    if mode == "I;16":
        grey = numpy.asarray(image.convert("L"), dtype=numpy.uint16) * 257  # 8-bit values spread over 16 bits
        image = Image.fromarray(grey)
    else:
        image = image.convert(mode)
    source = tmp_path / ("in.jpg" if mode == "CMYK" else "in.png")
    image.save(source)
    loaded = load_image(str(source))
    assert loaded.shape == (channels, 12, 10) and 0 <= loaded.min() and loaded.max() <= 1
    if mode == "I;16":  # scaled by 65535, not clipped at 255
        torch.testing.assert_close(loaded[0], torch.from_numpy(grey / 65535.0).float())
    assert superres("upscale", source, tmp_path / "out.png", "--model", model_dir) == 0
    assert load_image(str(tmp_path / "out.png")).shape == (channels, 24, 20)


def test_upscale_of_a_truncated_file_is_one_line_and_writes_nothing(model_dir, tmp_path, capsys):
    source = _truncated_png(tmp_path / "cut.png")
    assert superres("upscale", source, tmp_path / "out.png", "--model", model_dir) == 1
    assert_one_line(capsys.readouterr().err, r".*cut\.png: not a readable image \(.*truncated.*\)$")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cut.png"]


def test_upscale_interrupted_while_writing_leaves_the_old_output(model_dir, tmp_path, monkeypatch):
    source, target = tmp_path / "in.png", tmp_path / "out.png"
    save_image(str(source), smooth_image(3, 12, 12, seed=0))
    target.write_bytes(b"previous result")

    def interrupted_save(self, *arguments, **keywords):
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted_save)
    assert superres("upscale", source, target, "--model", model_dir) == 130
    assert target.read_bytes() == b"previous result"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.png", "out.png"]


@pytest.mark.parametrize(
    "output, arguments, status, pattern",
    [
        ("out.xyz", [], 1, r".*out\.xyz: unknown image file extension '\.xyz'"),
        ("missing/out.png", [], 1, r".*out\.png: cannot write the image"),
        ("out.png", ["--stride", "8"], 2, r"--stride 8 is larger than the model's 7×7 patches"),
        ("out.png", ["--threads", "0"], 2, r"--threads must be a positive integer, got 0$"),
    ],
)
def test_upscale_bad_output_or_options_is_one_line(model_dir, tmp_path, capsys, output, arguments, status, pattern):
    source = tmp_path / "in.png"
    save_image(str(source), smooth_image(3, 12, 12, seed=0))
    assert superres("upscale", source, tmp_path / output, "--model", model_dir, *arguments) == status
    assert_one_line(capsys.readouterr().err, pattern)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.png"]


@pytest.mark.parametrize("protocol", ["literature", "pytorch"])
def test_eval_under_each_protocol(model_dir, folders, tmp_path, capsys, protocol):
    assert superres("eval", "--model", model_dir, "--images", folders / "test", "--out", tmp_path, "--stride", "3",
                    "--protocol", protocol) == 0
    results = json.loads((tmp_path / "eval.json").read_text())
    assert results["protocol"] == protocol and len(results["images"]) == 2
    assert f"{protocol} protocol" in capsys.readouterr().out


def test_contrast_normalisation_and_detail_gain_default_per_architecture_and_target():
    def config(*arguments):
        return config_from_args(cli.build_parser().parse_args(["train", *arguments]))

    assert (config()["contrast_norm"], config()["detail_gain"]) == (0.02, 0.5)
    for arguments in (["--architecture", "srcnn"], ["--target", "image"], ["--contrast-norm", "0"]):
        assert (config(*arguments)["contrast_norm"], config(*arguments)["detail_gain"]) == (0.0, 4.0)


def test_srcnn_control_trains_evaluates_and_upscales(folders, tmp_path, capsys):
    model = tmp_path / "srcnn"
    assert superres("train", "--architecture", "srcnn", "--images", folders / "train", "--out", model, "--epochs", "1",
                    "--patch-size", "15", "--patches", "200", "--batch-size", "50", "--threads", "1") == 0
    assert superres("eval", "--model", model, "--images", folders / "test", "--out", tmp_path / "eval") == 0
    assert "SRCNN beats bicubic on" in capsys.readouterr().out
    source = tmp_path / "in.png"
    save_image(str(source), smooth_image(3, 40, 30, seed=4))
    assert superres("upscale", source, tmp_path / "out.png", "--model", model) == 0
    assert load_image(str(tmp_path / "out.png")).shape == (3, 80, 60)
