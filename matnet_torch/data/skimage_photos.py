"""The default images of the super-resolution tool: photographs that scikit-image ships inside its
package (``skimage/data``; nothing is downloaded), split into a training and a test set.

The sets never overlap, and no scene is in both (``motorcycle_right.png``, the other half of the
``motorcycle_left.png`` stereo pair, is left out). Also left out: drawings and synthetic images
(``chessboard_*``, ``color``, ``horse``, ``logo``, ``phantom``), deliberately blurred ones
(``cell``, ``clock_motion``), tiny ones (``microaneurysms``, ``multipage.tif``, the gif).
"""
import importlib.util
import os
from typing import List

from .images import ImageDataError

TRAIN_IMAGES = (
    "brick.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "motorcycle_left.png",
    "page.png",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
)
TEST_IMAGES = ("astronaut.png", "camera.png", "chelsea.png", "coffee.png")
SPLITS = {"train": TRAIN_IMAGES, "test": TEST_IMAGES}


def skimage_data_dir() -> str:
    """The folder of the images installed with scikit-image."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise ImageDataError(
            "scikit-image is not installed: `pip install scikit-image` for the default images, or pass --images DIR"
        )
    return os.path.join(os.path.dirname(spec.origin), "data")


def skimage_photographs(split: str) -> List[str]:
    """The paths of the ``split`` ("train" or "test") photographs of scikit-image."""
    if split not in SPLITS:
        raise ValueError(f"skimage_photographs: unknown split '{split}'; expected one of {', '.join(SPLITS)}")
    folder = skimage_data_dir()
    paths = [os.path.join(folder, name) for name in SPLITS[split]]
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        raise ImageDataError(f"scikit-image's package lacks {', '.join(missing)}; pass --images DIR instead")
    return paths
