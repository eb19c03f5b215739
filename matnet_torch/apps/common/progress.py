"""Progress bars for the command-line tools.

API:

    with progress_bar(total, description, unit="img", show=True, delay=0.0) as bar:
        bar.update(count)
        bar.set_postfix(loss=..., refresh=False)

A tqdm bar that disappears when done (the loops print one summary line per epoch instead) and is off
when stderr is not a terminal, so logs and captured output hold only the summaries; ``show=False``
turns it off (the processes of a torchrun other than rank 0); ``delay`` seconds pass before it
appears (a short job shows none). tqdm is imported on first use, so that loading a checkpoint
through ``common`` does not need it.
"""


def progress_bar(total: int, description: str, unit: str = "img", show: bool = True, delay: float = 0.0) -> "tqdm.tqdm":
    """A transient tqdm bar over ``total`` units, disabled on non-terminals and unless ``show``."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=unit, leave=False, disable=None if show else True, delay=delay)
