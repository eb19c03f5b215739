"""matnet_torch.imaging: colour, bicubic resizing, derivative images, patches, PSNR, and the
super-resolution pipeline with the network replaced by the identity."""
import math

import pytest
import torch

from matnet_torch.imaging import (
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
    ycbcr_to_rgb,
)
from matnet_torch.imaging.superresolution import (
    MODALITIES,
    Encoding,
    feature_images,
    low_resolution_pair,
    super_resolve,
    training_pairs,
    training_patches,
)


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
    """A stand-in autoencoder whose X̂¹ is ``function`` of its (centred) input X¹."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, xs):
        return [self.function(xs[0])] + [x + 0.5 for x in xs[1:]], None


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
