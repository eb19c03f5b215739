"""The progress bar of the apps' training loops.

API:

    with progress_bar(total, description, unit="img") as bar:
        bar.update(count)
        bar.set_postfix(loss=..., refresh=False)

A tqdm bar that disappears when done (the loops print one summary line per epoch instead) and is off
when stderr is not a terminal, so logs and captured output hold only the summaries.
"""
from tqdm import tqdm


def progress_bar(total: int, description: str, unit: str = "img") -> tqdm:
    """A transient tqdm bar over ``total`` units, disabled on non-terminals."""
    return tqdm(total=total, desc=description, unit=unit, leave=False, disable=None)
