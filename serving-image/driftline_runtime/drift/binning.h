/* Drift binning kernels behind driftline_runtime.drift._binning (see _binning.pyx for the contract).

   Why C: every served row is binned, 20-odd values a row. numpy needs one pass over a batch per cut plus temporaries
   (250-330 ns a 21-column row measured); this is 60-110 ns, with no dependency beyond a C compiler at build time.
   Why these shapes: a request's rows arrive row-major, so a block of rows is read in row order into column-major
   scratch that stays in L1; each column is then counted against its cuts in a loop the compiler vectorises; codes go
   back row by row. Measured on the profile's usual 9 cuts, the strided column reads cost more than the comparisons. */
#ifndef DRIFTLINE_BINNING_H
#define DRIFTLINE_BINNING_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* An AVX2 copy of the counting loop, picked at load time where the CPU has it; SSE2 otherwise. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define DL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DL_CLONES
#endif

#define DL_LINEAR_CUTS 32     /* up to this many cuts a branch-free count beats a binary search */
#define DL_SCRATCH_BYTES 16384 /* scratch per block: half of a 32 KiB L1 */
#define DL_MAX_BLOCK 256

/* acc[i] = the number of cuts <= x[i]: searchsorted(cut, x, "right") without a branch per value. Four cuts a pass
   over the block, so each value and count is loaded and stored once per four cuts, not once per cut. */
DL_CLONES static void dl_count_cuts(const double *restrict x, ptrdiff_t m, const double *restrict cut, ptrdiff_t nc,
                                    int64_t *restrict acc)
{
    ptrdiff_t k = 0;
    for (ptrdiff_t i = 0; i < m; i++) acc[i] = 0;
    for (; k + 4 <= nc; k += 4) {
        const double c0 = cut[k], c1 = cut[k + 1], c2 = cut[k + 2], c3 = cut[k + 3];
        for (ptrdiff_t i = 0; i < m; i++) {
            const double v = x[i];
            acc[i] += (int64_t)(c0 <= v) + (int64_t)(c1 <= v) + (int64_t)(c2 <= v) + (int64_t)(c3 <= v);
        }
    }
    for (; k < nc; k++) {
        const double c = cut[k];
        for (ptrdiff_t i = 0; i < m; i++) acc[i] += (c <= x[i]);
    }
}

static int64_t dl_search(const double *cut, ptrdiff_t nc, double v)
{
    ptrdiff_t lo = 0, hi = nc;
    while (lo < hi) {
        const ptrdiff_t mid = (lo + hi) >> 1;
        if (cut[mid] <= v) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* out[i*orow + t*ocol] = offsets[t] + the bin of values[i*vrow + j*vcol], column j going to column t = targets[j]:
   the number of cuts[t] <= the value, or missing[t] for NaN. Strides are in elements. Returns -1 when out of
   memory. */
static int dl_bin(const double *values, ptrdiff_t rows, ptrdiff_t n, ptrdiff_t vrow, ptrdiff_t vcol,
                  const ptrdiff_t *targets, const double *cuts, ptrdiff_t width, const int32_t *ncuts,
                  const int32_t *missing, const int32_t *offsets, int32_t *out, ptrdiff_t orow, ptrdiff_t ocol)
{
    if (rows <= 0 || n <= 0) return 0;
    ptrdiff_t block = DL_SCRATCH_BYTES / (n * (ptrdiff_t)(sizeof(double) + sizeof(int64_t)));
    block = block < 8 ? 8 : block > DL_MAX_BLOCK ? DL_MAX_BLOCK : block;
    double *x = malloc((size_t)(n * block) * sizeof(double));
    int64_t *acc = malloc((size_t)(n * block) * sizeof(int64_t));
    if (x == NULL || acc == NULL) {
        free(x);
        free(acc);
        return -1;
    }
    for (ptrdiff_t start = 0; start < rows; start += block) {
        const ptrdiff_t m = rows - start < block ? rows - start : block;
        for (ptrdiff_t i = 0; i < m; i++) {
            const double *row = values + (start + i) * vrow;
            for (ptrdiff_t j = 0; j < n; j++) x[j * block + i] = row[j * vcol];
        }
        for (ptrdiff_t j = 0; j < n; j++) {
            const ptrdiff_t t = targets[j], nc = ncuts[t];
            const double *cut = cuts + t * width, *xj = x + j * block;
            int64_t *aj = acc + j * block;
            if (nc <= DL_LINEAR_CUTS) dl_count_cuts(xj, m, cut, nc, aj);
            else for (ptrdiff_t i = 0; i < m; i++) aj[i] = dl_search(cut, nc, xj[i]);
            const int64_t off = offsets[t], miss = off + missing[t];
            for (ptrdiff_t i = 0; i < m; i++) aj[i] = isnan(xj[i]) ? miss : off + aj[i];
        }
        for (ptrdiff_t i = 0; i < m; i++) {
            int32_t *dst = out + (start + i) * orow;
            for (ptrdiff_t j = 0; j < n; j++) dst[targets[j] * ocol] = (int32_t)acc[j * block + i];
        }
    }
    free(x);
    free(acc);
    return 0;
}

/* A count window's ring takes rows*cols codes from slot `start` on (wrapping at `size`): the codes a slot below
   `filled` held are subtracted from counts first, then the new ones are stored and counted. rows <= size. */
#define DL_RING_ADD(NAME, RING_T)                                                                                      \
    static void NAME(const int32_t *codes, ptrdiff_t rows, ptrdiff_t cols, RING_T *ring, ptrdiff_t size,               \
                     int64_t *counts, ptrdiff_t start, ptrdiff_t filled)                                               \
    {                                                                                                                  \
        ptrdiff_t slot = start;                                                                                        \
        for (ptrdiff_t i = 0; i < rows; i++) {                                                                         \
            RING_T *old = ring + slot * cols;                                                                          \
            const int32_t *new = codes + i * cols;                                                                     \
            if (slot < filled)                                                                                         \
                for (ptrdiff_t j = 0; j < cols; j++) counts[old[j]]--;                                                 \
            for (ptrdiff_t j = 0; j < cols; j++) {                                                                     \
                old[j] = (RING_T)new[j];                                                                               \
                counts[new[j]]++;                                                                                      \
            }                                                                                                          \
            if (++slot == size) slot = 0;                                                                              \
        }                                                                                                              \
    }
DL_RING_ADD(dl_ring_add_16, int16_t)
DL_RING_ADD(dl_ring_add_32, int32_t)

/* Whether every one of the n codes is a bin: 0 <= code < bins. One branch-free pass the compiler vectorises. */
static int dl_codes_in_range(const int32_t *codes, ptrdiff_t n, ptrdiff_t bins)
{
    uint32_t bad = 0;
    for (ptrdiff_t i = 0; i < n; i++) bad |= (uint32_t)((uint32_t)codes[i] >= (uint32_t)bins);
    return bad == 0;
}

/* counts[c] += 1 for each of the n codes. */
static void dl_count(const int32_t *codes, ptrdiff_t n, int64_t *counts)
{
    for (ptrdiff_t i = 0; i < n; i++) counts[codes[i]]++;
}

#endif
