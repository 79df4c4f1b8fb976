# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled drift binning (the loops are in binning.h): numeric values to global bin codes, a count window's ring,
and histogram counting. Shapes and ranges are checked here, so a caller's mistake raises instead of writing out of
bounds; the reference implementation the tests hold this to is NumericColumn.codes (numpy's searchsorted)."""

from libc.stdint cimport int16_t, int32_t, int64_t

cdef extern from "binning.h" nogil:
    int dl_bin(const double *values, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t vrow, Py_ssize_t vcol,
               const Py_ssize_t *targets, const double *cuts, Py_ssize_t width, const int32_t *ncuts,
               const int32_t *missing, const int32_t *offsets, int32_t *out, Py_ssize_t orow, Py_ssize_t ocol)
    void dl_ring_add_16(const int32_t *codes, Py_ssize_t rows, Py_ssize_t cols, int16_t *ring, Py_ssize_t size,
                        int64_t *counts, Py_ssize_t start, Py_ssize_t filled)
    void dl_ring_add_32(const int32_t *codes, Py_ssize_t rows, Py_ssize_t cols, int32_t *ring, Py_ssize_t size,
                        int64_t *counts, Py_ssize_t start, Py_ssize_t filled)
    void dl_count(const int32_t *codes, Py_ssize_t n, int64_t *counts)
    int dl_codes_in_range(const int32_t *codes, Py_ssize_t n, Py_ssize_t bins)
    enum: DL_LINEAR_CUTS

LINEAR_CUTS = DL_LINEAR_CUTS
"""Columns with up to this many cuts are binned by a branch-free count, wider ones by a binary search."""


ctypedef fused ring_t:
    int16_t
    int32_t


cdef class NumericBinner:
    """The binning rules of a reference's columns: row t holds column t's cuts (NaN-padded to the widest), its cut
    count (0 for a column this never bins), its local missing bin and its offset in the global bin vector."""

    cdef const double[:, ::1] cuts
    cdef const int32_t[::1] ncuts
    cdef const int32_t[::1] missing
    cdef const int32_t[::1] offsets
    cdef readonly Py_ssize_t total_bins

    def __init__(self, const double[:, ::1] cuts, const int32_t[::1] ncuts, const int32_t[::1] missing,
                 const int32_t[::1] offsets, Py_ssize_t total_bins):
        columns = cuts.shape[0]
        if not (ncuts.shape[0] == missing.shape[0] == offsets.shape[0] == columns) or cuts.shape[1] < 1:
            raise ValueError("cuts, ncuts, missing and offsets must describe the same columns")
        for t in range(columns):
            if not 0 <= ncuts[t] <= cuts.shape[1]:
                raise ValueError(f"column {t}: {ncuts[t]} cuts for a table {cuts.shape[1]} wide")
            if offsets[t] < 0 or missing[t] < ncuts[t] + 1 or offsets[t] + missing[t] >= total_bins:
                raise ValueError(f"column {t}: bins outside the {total_bins} global bins")
        self.cuts, self.ncuts, self.missing, self.offsets = cuts, ncuts, missing, offsets
        self.total_bins = total_bins

    def codes(self, const double[:, :] values, const Py_ssize_t[::1] targets, int32_t[:, :] out):
        """out[i, targets[j]] = the global bin of values[i, j]; other columns of out are left as they are."""
        cdef Py_ssize_t rows = values.shape[0], n = values.shape[1], j, rc
        if targets.shape[0] != n or out.shape[0] != rows:
            raise ValueError(f"{rows} x {n} values, {targets.shape[0]} targets, {out.shape[0]} rows out")
        if values.strides[0] % sizeof(double) or values.strides[1] % sizeof(double):
            raise ValueError(f"values step {values.strides[0]} and {values.strides[1]} bytes, not whole float64 steps")
        if out.strides[0] % sizeof(int32_t) or out.strides[1] % sizeof(int32_t):
            raise ValueError("out must step in whole int32s")
        for j in range(n):
            if not 0 <= targets[j] < min(out.shape[1], self.ncuts.shape[0]):
                raise ValueError(f"target {targets[j]} is not a column of out")
        if rows == 0 or n == 0:
            return
        with nogil:
            rc = dl_bin(&values[0, 0], rows, n, values.strides[0] // sizeof(double),
                        values.strides[1] // sizeof(double), &targets[0], &self.cuts[0, 0], self.cuts.shape[1],
                        &self.ncuts[0], &self.missing[0], &self.offsets[0], &out[0, 0],
                        out.strides[0] // sizeof(int32_t), out.strides[1] // sizeof(int32_t))
        if rc != 0:
            raise MemoryError("no memory for the binning scratch")


cdef int _check_codes(const int32_t[:, ::1] codes, Py_ssize_t bins) except -1:
    cdef Py_ssize_t n = codes.shape[0] * codes.shape[1]
    cdef int ok
    with nogil:
        ok = dl_codes_in_range(&codes[0, 0], n, bins)
    if not ok:
        bad = next(int(c) for row in codes for c in row if not 0 <= c < bins)
        raise ValueError(f"code {bad} is not one of the {bins} bins")
    return 0


def ring_add(const int32_t[:, ::1] codes, ring_t[:, ::1] ring, int64_t[::1] counts, Py_ssize_t start,
             Py_ssize_t filled):
    """Store rows of codes in the ring from slot `start` on, wrapping; a slot below `filled` holds a live row, whose
    codes leave counts before the new ones arrive."""
    cdef Py_ssize_t rows = codes.shape[0], size = ring.shape[0]
    if codes.shape[1] != ring.shape[1] or rows > size or not 0 <= start < size or not 0 <= filled <= size:
        raise ValueError(f"{rows} x {codes.shape[1]} codes into a {size} x {ring.shape[1]} ring at {start}")
    if ring_t is int16_t and counts.shape[0] > 32768:
        raise ValueError(f"an int16 ring cannot hold codes of {counts.shape[0]} bins")
    if rows == 0 or codes.shape[1] == 0:
        return
    _check_codes(codes, counts.shape[0])
    with nogil:
        if ring_t is int16_t:
            dl_ring_add_16(&codes[0, 0], rows, codes.shape[1], &ring[0, 0], size, &counts[0], start, filled)
        else:
            dl_ring_add_32(&codes[0, 0], rows, codes.shape[1], &ring[0, 0], size, &counts[0], start, filled)


def count(const int32_t[:, ::1] codes, int64_t[::1] counts):
    """counts[c] += 1 for every code c."""
    if codes.shape[0] == 0 or codes.shape[1] == 0:
        return
    _check_codes(codes, counts.shape[0])
    with nogil:
        dl_count(&codes[0, 0], codes.shape[0] * codes.shape[1], &counts[0])
