"""matnet_torch.imaging: colour, bicubic resizing, derivative images, patches, PSNR, and the
super-resolution pipeline with the network replaced by the identity."""
import itertools
import math

import pytest
import torch

from matnet_torch.imaging import (
    StreamingMerge,
    bicubic_resize,
    crop_to_multiple,
    derivative_images,
    downscale,
    extract_patches,
    merge_patches,
    psnr,
    random_patches,
    rgb_to_ycbcr,
    upscale,
    upscale_rows,
    ycbcr_to_rgb,
)
from matnet_torch.imaging.matlab_bicubic import contributions, cubic, matlab_resize
from matnet_torch.imaging.protocol import eight_bit, to_rgb, to_ycbcr
from matnet_torch.imaging.superresolution import (
    MODALITIES,
    Encoding,
    feature_images,
    low_resolution_pair,
    super_resolve,
    super_resolve_rows,
    training_pairs,
    training_patches,
)
from matnet_torch.nn import MultimodalMatNetAutoencoder


# ---------------------------------------------------------------- derivatives
def test_derivatives_of_a_hand_computed_example():
    image = torch.tensor([[0.0, 1.0, 4.0], [2.0, 3.0, 9.0]])
    # Replicate padding: row 0 reads [0, 0, 1, 4, 4], row 1 [2, 2, 3, 9, 9]; columns likewise.
    d_dx = torch.tensor([[0.5, 2.0, 1.5], [0.5, 3.5, 3.0]])  # (right − left) / 2
    d_dy = torch.tensor([[1.0, 1.0, 2.5], [1.0, 1.0, 2.5]])  # (below − above) / 2
    d_dxx = torch.tensor([[1.0, 2.0, -3.0], [1.0, 5.0, -6.0]])  # right − 2·centre + left
    d_dyy = torch.tensor([[2.0, 2.0, 5.0], [-2.0, -2.0, -5.0]])  # below − 2·centre + above
    torch.testing.assert_close(derivative_images(image), torch.stack([d_dx, d_dy, d_dxx, d_dyy]))


@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 6, 4), (1, 1)], ids=["image", "batch", "1x1"])
def test_derivatives_of_a_constant_image_are_zero(shape):
    derivatives = derivative_images(torch.full(shape, 0.3, dtype=torch.float64))
    assert derivatives.shape == shape[:-2] + (4,) + shape[-2:]
    assert derivatives.abs().max() < 1e-15


def test_feature_images_map_the_derivative_ranges_onto_the_unit_interval():
    # The extreme first and second differences of values in [0, 1]: a one-pixel spike, a step.
    spike = torch.zeros(5, 5, dtype=torch.float64)
    spike[2, 2] = 1.0
    step = torch.zeros(5, 5, dtype=torch.float64)
    step[:, 2:] = 1.0
    for image in (spike, 1 - spike, step, 1 - step):
        features = feature_images(image)
        assert features.min() >= 0 and features.max() <= 1
    assert feature_images(spike)[2, 2, 2] == 0.0 and feature_images(1 - spike)[2, 2, 2] == 1.0
    torch.testing.assert_close(feature_images(torch.full((4, 4), 0.7)), torch.full((4, 4, 4), 0.5))


# ---------------------------------------------------------------- PSNR
def test_psnr_of_a_hand_computed_example():
    truth = torch.zeros(4, 4)
    estimate = truth.clone()
    estimate[1, 2] = 0.1  # inside the 1-pixel border: MSE over the 2×2 centre = 0.01 / 4
    estimate[0, 0] = 1.0  # on the border: cropped away
    assert psnr(estimate, truth, border=1) == pytest.approx(10 * math.log10(400.0), abs=1e-5)
    # without the crop: MSE = (0.01 + 1) / 16
    assert psnr(estimate, truth) == pytest.approx(10 * math.log10(16 / 1.01), abs=1e-5)
    assert psnr(truth, truth) == math.inf


@pytest.mark.parametrize(
    "estimate, truth, border, message",
    [
        (torch.zeros(4, 4), torch.zeros(4, 5), 0, r"psnr: expected estimate and truth of one shape"),
        (torch.zeros(4, 4), torch.zeros(4, 4), 2, r"psnr: border 2 leaves no pixels of a 4×4 image"),
    ],
)
def test_psnr_rejects(estimate, truth, border, message):
    with pytest.raises(ValueError, match=message):
        psnr(estimate, truth, border)


# ---------------------------------------------------------------- colour and resizing
def test_ycbcr_of_known_colours_and_round_trip():
    red = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).view(3, 1, 1)
    torch.testing.assert_close(rgb_to_ycbcr(red).flatten(), torch.tensor([0.299, 0.5 - 0.168736, 1.0], dtype=torch.float64))
    grey = torch.full((3, 2, 2), 0.25, dtype=torch.float64)
    torch.testing.assert_close(rgb_to_ycbcr(grey), torch.stack([torch.full((2, 2), v, dtype=torch.float64) for v in (0.25, 0.5, 0.5)]))
    image = torch.rand(2, 3, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(image)), image)
    with pytest.raises(ValueError, match=r"rgb_to_ycbcr: expected an image of shape \(\.\.\., 3, H, W\), got \(4, 5, 5\)"):
        rgb_to_ycbcr(torch.zeros(4, 5, 5))


@pytest.mark.parametrize("shape, scale", [((12, 18), 2), ((3, 13, 9), 3), ((2, 1, 4, 4), 4)])
def test_downscale_then_upscale_shapes_and_range(shape, scale):
    image = crop_to_multiple(torch.rand(shape), scale)
    low = downscale(image, scale)
    assert low.shape == image.shape[:-2] + (image.shape[-2] // scale, image.shape[-1] // scale)
    high = upscale(low, scale)
    assert high.shape == image.shape and high.min() >= 0 and high.max() <= 1


def test_bicubic_keeps_a_constant_image_and_clamps_overshoot():
    torch.testing.assert_close(bicubic_resize(torch.full((6, 6), 0.4), (3, 3)), torch.full((3, 3), 0.4))
    edge = torch.zeros(8, 8)
    edge[:, 4:] = 1.0  # cubic convolution overshoots beside a step; the result stays in [0, 1]
    resized = bicubic_resize(edge, (16, 16))
    assert resized.min() == 0.0 and resized.max() == 1.0


# ---------------------------------------------------------------- patches
@pytest.mark.parametrize(
    "shape, size, stride",
    [((9, 9), 3, 1), ((10, 13), 4, 3), ((5, 11, 12), 5, 2), ((15, 15), 15, 4), ((16, 20), 15, 7)],
    ids=["stride1", "extended", "channels", "one-patch", "extended-both"],
)
def test_extract_then_merge_is_the_identity(shape, size, stride):
    image = torch.rand(shape, dtype=torch.float64)
    patches = extract_patches(image, size, stride)
    assert patches.shape[1:] == shape[:-2] + (size, size)
    torch.testing.assert_close(merge_patches(patches, shape[-2:], stride), image)


def test_extract_patches_lists_the_grid_row_by_row():
    image = torch.arange(20.0).view(4, 5)
    patches = extract_patches(image, 2, 2)  # the grid extends to 4×6 by repeating the last column
    assert patches.shape == (6, 2, 2)
    torch.testing.assert_close(patches[1], torch.tensor([[2.0, 3.0], [7.0, 8.0]]))
    torch.testing.assert_close(patches[2], torch.tensor([[4.0, 4.0], [9.0, 9.0]]))
    torch.testing.assert_close(patches[3], torch.tensor([[10.0, 11.0], [15.0, 16.0]]))


def test_merge_averages_the_overlaps():
    patches = torch.stack([torch.zeros(2, 2), torch.ones(2, 2)])  # two patches on a 2×3 image, stride 1
    torch.testing.assert_close(merge_patches(patches, (2, 3), 1), torch.tensor([[0.0, 0.5, 1.0]] * 2))


def test_random_patches_are_slices_of_the_image():
    height, width, size = 7, 9, 3
    image = torch.arange(height * width, dtype=torch.float64).view(height, width)
    stack = torch.stack([image, -image])
    patches = random_patches(stack, size, 50, torch.Generator().manual_seed(0))
    assert patches.shape == (50, 2, size, size)
    for patch in patches:
        top, left = divmod(int(patch[0, 0, 0]), width)
        torch.testing.assert_close(patch[0], image[top : top + size, left : left + size])
        torch.testing.assert_close(patch[1], -patch[0])


@pytest.mark.parametrize("function", [lambda image: extract_patches(image, 5, 1), lambda image: random_patches(image, 5, 3, torch.Generator())])
def test_patches_reject_an_image_smaller_than_one_patch(function):
    with pytest.raises(ValueError, match=r"image of 4×9 pixels is smaller than one 5×5 patch"):
        function(torch.zeros(4, 9))


def test_merge_rejects_a_wrong_patch_count():
    with pytest.raises(ValueError, match=r"merge_patches: a 4×5 image with 2×2 patches at stride 2 has 6 patches, got 5"):
        merge_patches(torch.zeros(5, 2, 2), (4, 5), 2)


# ---------------------------------------------------------------- the pipeline
class _Reconstructs(torch.nn.Module):
    """A stand-in autoencoder whose X̂¹ is ``function`` of its (centred) input X¹: the encoder passes
    X¹ on as H, the image modality's decoder applies ``function``."""

    def __init__(self, function):
        super().__init__()
        self.decoders = [function]

    def encode(self, xs):
        return xs[0]


@pytest.mark.parametrize("stride", [1, 2, 4])
@pytest.mark.parametrize(
    "encoding, function",
    [
        (Encoding(target="image"), lambda x: x + 0.5),  # undoes the centring: X̂¹ is the bicubic patch
        (Encoding(target="detail", detail_gain=4.0), lambda x: torch.full_like(x, 0.5)),  # no detail
    ],
    ids=["image", "detail"],
)
def test_super_resolve_with_an_identity_network_is_bicubic(stride, encoding, function):
    low = torch.rand(11, 8, dtype=torch.float64)
    estimate = super_resolve(_Reconstructs(function), low, 2, 5, encoding, stride, batch_size=7)
    torch.testing.assert_close(estimate, upscale(low, 2))


def test_super_resolve_adds_the_decoded_detail():
    low = torch.full((6, 6), 0.5, dtype=torch.float64)  # bicubic of a constant is that constant
    network = _Reconstructs(lambda x: torch.full_like(x, 0.5 + 4.0 * 0.1))  # detail +0.1 everywhere
    estimate = super_resolve(network, low, 2, 5, Encoding("bicubic", "detail", 4.0), 3)
    torch.testing.assert_close(estimate, torch.full((12, 12), 0.6, dtype=torch.float64))


@pytest.mark.parametrize("image_input", ["truth", "bicubic"])
@pytest.mark.parametrize("target", ["image", "detail"])
def test_training_pairs(image_input, target):
    modalities = torch.rand(6, MODALITIES, 5, 5, dtype=torch.float64)
    bicubic = torch.rand(6, 5, 5, dtype=torch.float64)
    inputs, targets = training_pairs(modalities, bicubic, Encoding(image_input, target, 2.0))
    torch.testing.assert_close(inputs[:, 1:], modalities[:, 1:] - 0.5)
    torch.testing.assert_close(targets[:, 1:], modalities[:, 1:])
    torch.testing.assert_close(inputs[:, 0], (modalities[:, 0] if image_input == "truth" else bicubic) - 0.5)
    expected = modalities[:, 0] if target == "image" else 0.5 + 2.0 * (modalities[:, 0] - bicubic)
    torch.testing.assert_close(targets[:, 0], expected)


@pytest.mark.parametrize("image_input", ["truth", "bicubic"])
def test_training_pairs_with_contrast_normalisation(image_input):
    modalities = torch.rand(6, MODALITIES, 5, 5, dtype=torch.float64)
    bicubic = torch.rand(6, 5, 5, dtype=torch.float64) * torch.linspace(0, 1, 6, dtype=torch.float64).view(6, 1, 1)
    epsilon = 0.03
    inputs, targets = training_pairs(modalities, bicubic, Encoding(image_input, "detail", 2.0, epsilon))
    # c_ε of the bicubic patch: √(mean of squared deviations from the patch mean + ε²); the first is flat (c = ε)
    deviations = bicubic - bicubic.mean(dim=(1, 2), keepdim=True)
    scales = (deviations.square().mean(dim=(1, 2)) + epsilon**2).sqrt().view(6, 1, 1)
    torch.testing.assert_close(scales[0], torch.full((1, 1), epsilon, dtype=torch.float64))
    image = modalities[:, 0] if image_input == "truth" else bicubic
    torch.testing.assert_close(inputs[:, 0], (image - image.mean(dim=(1, 2), keepdim=True)) / scales)
    torch.testing.assert_close(inputs[:, 1:], (modalities[:, 1:] - 0.5) / scales.unsqueeze(1))
    torch.testing.assert_close(targets[:, 0], 0.5 + 2.0 * (modalities[:, 0] - bicubic) / scales)
    torch.testing.assert_close(targets[:, 1:], 0.5 + (modalities[:, 1:] - 0.5) / scales.unsqueeze(1))


@pytest.mark.parametrize("stride", [1, 3])
def test_super_resolve_scales_the_detail_back_by_each_patch_s_contrast(stride):
    """A flat image has c_ε = ε in every patch: a network that adds the normalised detail 0.1 · gain
    yields bicubic + 0.1 · ε; a network that adds none yields bicubic, whatever the image."""
    encoding = Encoding("bicubic", "detail", 4.0, 0.25)
    flat = super_resolve(_Reconstructs(lambda x: torch.full_like(x, 0.5 + 4.0 * 0.1)), torch.full((6, 6), 0.5, dtype=torch.float64), 2, 5, encoding, stride)
    torch.testing.assert_close(flat, torch.full((12, 12), 0.5 + 0.1 * 0.25, dtype=torch.float64))
    low = torch.rand(11, 8, dtype=torch.float64)
    estimate = super_resolve(_Reconstructs(lambda x: torch.full_like(x, 0.5)), low, 2, 5, encoding, stride, batch_size=7)
    torch.testing.assert_close(estimate, upscale(low, 2))


def test_training_patches_hold_the_truth_and_the_features_of_the_bicubic_image():
    truth = torch.rand(21, 17, dtype=torch.float64)
    modalities, bicubic = training_patches(truth, 2, 5, 40, torch.Generator().manual_seed(1))
    assert modalities.shape == (40, MODALITIES, 5, 5) and bicubic.shape == (40, 5, 5)
    cropped, _, upscaled = low_resolution_pair(truth, 2)
    assert cropped.shape == (20, 16) and upscaled.shape == (20, 16)
    features = feature_images(upscaled)
    stack = torch.cat([cropped.unsqueeze(0), features, upscaled.unsqueeze(0)])
    windows = extract_patches(stack, 5, 1)  # every position; each sampled patch must be one of them
    for modality, bicubic_patch in zip(modalities, bicubic):
        sample = torch.cat([modality, bicubic_patch.unsqueeze(0)]).flatten()
        assert (windows.flatten(1) == sample).all(dim=1).any()


# ---------------------------------------------------------------- MATLAB's imresize bicubic
def test_matlab_kernel_values():
    # cubic at 0, ¼, ¾, 1, 1¼, 1¾, 2 from its two pieces (1.5|x|³ − 2.5|x|² + 1; −0.5|x|³ + 2.5|x|² − 4|x| + 2)
    x = torch.tensor([0.0, 0.25, 0.75, 1.0, 1.25, 1.75, 2.0, -0.25, 2.5], dtype=torch.float64)
    expected = [1.0, 0.8671875, 0.2265625, 0.0, -0.0703125, -0.0234375, 0.0, 0.8671875, 0.0]
    torch.testing.assert_close(cubic(x), torch.tensor(expected, dtype=torch.float64), rtol=0, atol=0)


def test_matlab_downscale_4_to_2_weights_by_hand():
    # Output 1 sits at u = 1/½ + ½(1 − 2) = 1.5; the kernel ½·cubic(x/2) has width 8, so samples
    # j = −2 … 5 (1-based) at distances ±0.5, ±1.5, ±2.5, ±3.5 weigh ½·cubic(±¼, ±¾, ±1¼, ±1¾):
    # 0.43359375, 0.11328125, −0.03515625, −0.01171875 (sum 1). Mirroring −2, −1, 0 → 3, 2, 1 and
    # 5 → 4 collects them per sample.
    weights, indices = contributions(4, 2, 0.5)
    dense = torch.zeros(2, 4, dtype=torch.float64)
    dense.index_put_((torch.arange(2).unsqueeze(1).expand_as(indices), indices), weights, accumulate=True)
    first = [0.546875, 0.3984375, 0.1015625, -0.046875]
    torch.testing.assert_close(dense, torch.tensor([first, first[::-1]], dtype=torch.float64), rtol=0, atol=1e-15)
    # A step in the last column, constant down the rows: each output row is (x4-weight of output 1, of output 2).
    step = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64).expand(4, 4)
    torch.testing.assert_close(matlab_resize(step, (2, 2)), torch.tensor([[-0.046875, 0.546875]] * 2, dtype=torch.float64), rtol=0, atol=1e-15)


def test_matlab_upscale_2_to_4_weights_by_hand():
    # Output 1 at u = ½ + ½(1 − ½) = 0.75: samples j = −1, 0, 1, 2 at distances 1.75, 0.75, −0.25, −1.25,
    # weights −0.0234375, 0.2265625, 0.8671875, −0.0703125; −1 and 0 mirror to 2 and 1. Output 2 at
    # u = 1.25: j = 0 … 3 at 1.25, 0.25, −0.75, −1.75; 0 and 3 mirror to 1 and 2.
    weights, indices = contributions(2, 4, 2.0)
    dense = torch.zeros(4, 2, dtype=torch.float64)
    dense.index_put_((torch.arange(4).unsqueeze(1).expand_as(indices), indices), weights, accumulate=True)
    expected = torch.tensor([[1.09375, -0.09375], [0.796875, 0.203125], [0.203125, 0.796875], [-0.09375, 1.09375]], dtype=torch.float64)
    torch.testing.assert_close(dense, expected, rtol=0, atol=1e-15)


def test_matlab_resize_keeps_constants_and_reproduces_ramps_away_from_the_border():
    constant = torch.full((2, 9, 12), 0.3, dtype=torch.float64)
    for size in [(3, 4), (18, 24), (27, 5)]:
        torch.testing.assert_close(matlab_resize(constant, size), torch.full((2, *size), 0.3, dtype=torch.float64))
    ramp = torch.arange(40, dtype=torch.float64).expand(6, 40)  # I[r, c] = c
    # ×2: Keys' kernel reproduces linear functions: output column i (0-based) sits at (i + ½)/2 − ½.
    up = matlab_resize(ramp, (12, 80))[0]
    inside = torch.arange(4, 76)
    torch.testing.assert_close(up[inside], (inside.double() + 0.5) / 2 - 0.5, rtol=0, atol=1e-12)
    # ×½: output i averages the symmetric neighbourhood of 2i + ½ (the stretched kernel reaches 4 samples).
    down = matlab_resize(ramp, (3, 20))[0]
    inside = torch.arange(3, 17)
    torch.testing.assert_close(down[inside], 2 * inside.double() + 0.5, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel", ["matlab", "pytorch"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_upscale_rows_equal_the_rows_of_the_whole_upscaling(kernel, scale):
    image = torch.rand(3, 11, 9)
    whole = upscale(image, scale, kernel)
    for start, stop in [(0, 1), (0, 7), (5, 13), (scale * 11 - 4, scale * 11), (0, scale * 11)]:
        rows = upscale_rows(image, scale, start, stop, kernel)
        if kernel == "matlab" or scale in (2, 4):  # every coordinate exact in binary
            assert torch.equal(rows, whole[:, start:stop]), (start, stop)
        else:  # the source coordinate (r + ½)/3 − ½ is rounded differently in the band
            torch.testing.assert_close(rows, whole[:, start:stop], rtol=0, atol=1e-6)


# ---------------------------------------------------------------- protocols
def test_studio_swing_luminance_and_round_trip():
    black, white = torch.zeros(3, 1, 1), torch.ones(3, 1, 1)
    assert to_ycbcr(black, True)[0].item() == pytest.approx(16 / 255) and to_ycbcr(white, True)[0].item() == pytest.approx(235 / 255)
    red = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).view(3, 1, 1)
    # MATLAB rgb2ycbcr: Y = 16 + 65.481 R + 128.553 G + 24.966 B, Cb = 128 − 37.797 R − 74.203 G + 112 B,
    # Cr = 128 + 112 R − 93.786 G − 18.214 B, of 255
    expected = torch.tensor([16 + 65.481, 128 - 37.797, 128 + 112.0], dtype=torch.float64) / 255
    torch.testing.assert_close(to_ycbcr(red, True).flatten(), expected)
    grey = torch.full((1, 2, 2), 0.5, dtype=torch.float64)
    torch.testing.assert_close(to_ycbcr(grey, True), torch.full((1, 2, 2), (16 + 219 * 0.5) / 255, dtype=torch.float64))
    image = torch.rand(3, 5, 4, dtype=torch.float64)
    for studio in (False, True):
        torch.testing.assert_close(to_rgb(to_ycbcr(image, studio), studio), image)
        torch.testing.assert_close(to_rgb(to_ycbcr(grey, studio), studio), grey)


def test_eight_bit_rounds_halves_up_and_clamps():
    values = torch.tensor([0.5 / 255, 1.5 / 255, 2.4 / 255, -0.1, 1.2], dtype=torch.float64)
    torch.testing.assert_close(eight_bit(values) * 255, torch.tensor([1.0, 2.0, 2.0, 0.0, 255.0], dtype=torch.float64))


# ---------------------------------------------------------------- streaming (bands of rows)
@pytest.mark.parametrize("shape, size, stride", [((9, 9), 3, 1), ((10, 13), 4, 3), ((16, 20), 15, 7), ((23, 11), 5, 5)])
def test_streaming_merge_equals_merge_patches_however_the_rows_are_grouped(shape, size, stride):
    image = torch.rand(shape, dtype=torch.float64)
    patches = extract_patches(image, size, stride) + torch.rand(1, size, size, dtype=torch.float64)  # overlaps disagree
    whole = merge_patches(patches, shape, stride)
    results = []
    for rows_per_call in (1, 2, 1000):
        merge = StreamingMerge(shape, size, stride, dtype=torch.float64)
        columns = merge.grid[1]
        bands, expected_first = [], 0
        for start in range(0, len(patches), rows_per_call * columns):
            first, rows = merge.add(patches[start : start + rows_per_call * columns])
            assert first == expected_first or len(rows) == 0
            expected_first += len(rows)
            bands.append(rows)
        results.append(torch.cat(bands))
    # Overlap sums accumulated in another order than fold's: float64 rounding of at most size² terms.
    torch.testing.assert_close(results[0], whole, rtol=1e-12, atol=1e-12)
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])


def _global_super_resolve(network, low, scale, size, encoding, stride, kernel):
    """The whole-image pipeline (every patch at once, ``merge_patches``), the reference for the bands."""
    upscaled = upscale(low, scale, kernel)
    stack = torch.cat([upscaled.unsqueeze(0), feature_images(upscaled)]) - 0.5
    patches = extract_patches(stack, size, stride)
    merged = merge_patches(network.decoders[0](network.encode(list(patches.unbind(1)))), upscaled.shape, stride)
    if encoding.target == "detail":
        merged = upscaled + (merged - 0.5) / encoding.detail_gain
    return merged.clamp(0, 1)


@pytest.mark.parametrize(
    "scale, size, stride, kernel",
    [(2, 5, 1, "pytorch"), (2, 7, 3, "matlab"), (3, 5, 2, "matlab"), (2, 9, 9, "pytorch"), (4, 6, 4, "pytorch")],
)
def test_super_resolve_in_bands_equals_the_whole_image(scale, size, stride, kernel):
    """Bands of one or two grid rows (borders at odd places) equal one band bit for bit, and the
    whole-image pipeline to rounding, with a nonlinear elementwise stand-in for the network made of
    + − × ÷ only (torch's vectorised transcendental functions may round an element differently
    depending on its place in the vector). (Bands of torch's bicubic at scale 3 are equal only to
    rounding: test_upscale_rows_equal_...)"""
    low = torch.rand(13, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(scale * size + stride))
    network = _Reconstructs(lambda x: 0.5 + x / (1.0 + x * x) + 0.1 * x * x)
    encoding = Encoding("bicubic", "detail", 4.0)
    whole = super_resolve(network, low, scale, size, encoding, stride, kernel, batch_size=10**6)
    grid_columns = (scale * 10 - size + stride - 1) // stride + 1
    for batch_size in (1, 2 * grid_columns - 1):
        assert torch.equal(super_resolve(network, low, scale, size, encoding, stride, kernel, batch_size=batch_size), whole)
    reference = _global_super_resolve(network, low, scale, size, encoding, stride, kernel)
    torch.testing.assert_close(whole, reference, rtol=1e-12, atol=1e-12)
    bands = list(super_resolve_rows(network, low, scale, size, encoding, stride, kernel, batch_size=grid_columns))
    assert [first for first, _ in bands] == list(itertools.accumulate([0] + [len(rows) for _, rows in bands[:-1]]))


@pytest.mark.parametrize("kernel", ["matlab", "pytorch"])
def test_super_resolve_in_bands_with_a_matnet_autoencoder(kernel):
    """The real network (fused operators, float32): bands equal the whole image to float32 rounding of
    the per-patch arithmetic (a patch's result may depend on where in a batch it falls, the sigmoid's
    in particular; on AVX2 they were equal bit for bit)."""
    torch.manual_seed(0)
    model = MultimodalMatNetAutoencoder([(7, 7)] * MODALITIES, (4, 4)).eval()
    low = torch.rand(17, 12)
    encoding = Encoding("bicubic", "detail", 4.0)
    whole = super_resolve(model, low, 2, 7, encoding, 1, kernel, batch_size=10**6)
    banded = super_resolve(model, low, 2, 7, encoding, 1, kernel, batch_size=25)
    torch.testing.assert_close(banded, whole, rtol=0, atol=1e-6)
