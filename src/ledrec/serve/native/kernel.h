// The arithmetic both fronts share, to the bit: a served score is a float64 dot product of float32 rows (the
// products are exact in float64) summed in numpy's pairwise order and rounded once to float32; a user vector is
// a float64 sum of encoder rows in history order, divided by T (mean) or sqrt(T), mapped by the query map in
// float64, rounded once to float32. The Python front computes the same with numpy
// (ledrec.export.mips.canonical_dot / ServingModel.user_vector); tests/serve/test_native.py holds the two equal.
// Compiled with -ffp-contract=off: a fused multiply-add would round differently from numpy's multiply then add.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ledrec {

// numpy's pairwise summation of n doubles (numpy/_core/src/umath/loops_utils.h.src, @TYPE@_pairwise_sum).
double pairwise_sum(const double* a, std::size_t n);

// <row, query> of D float32 values, as numpy's np.multiply(row, query, dtype=float64).sum() then .astype(float32).
float canonical_dot(const float* row, const float* query, std::size_t D, double* scratch);

// The user vector q (d float32) of the encoder rows of `items` (T of them, in order), as
// ServingModel.user_vector: mean (or 1/sqrt(T)) in float64, then q = u @ Q (Q: d x d float64, null for identity).
void user_vector(const float* encoder, std::size_t d, const int64_t* items, std::size_t T, bool mean,
                 const double* query_map, float* out, double* scratch);

}  // namespace ledrec
