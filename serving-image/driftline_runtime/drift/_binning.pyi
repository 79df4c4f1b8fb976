"""Types of the compiled drift binning (_binning.pyx)."""

import numpy as np
from numpy.typing import NDArray

LINEAR_CUTS: int

class NumericBinner:
    total_bins: int
    def __init__(
        self,
        cuts: NDArray[np.float64],
        ncuts: NDArray[np.int32],
        missing: NDArray[np.int32],
        offsets: NDArray[np.int32],
        total_bins: int,
    ) -> None: ...
    def codes(self, values: NDArray[np.float64], targets: NDArray[np.intp], out: NDArray[np.int32]) -> None: ...

def ring_add(
    codes: NDArray[np.int32],
    ring: NDArray[np.int16] | NDArray[np.int32],
    counts: NDArray[np.int64],
    start: int,
    filled: int,
) -> None: ...
def count(codes: NDArray[np.int32], counts: NDArray[np.int64]) -> None: ...
