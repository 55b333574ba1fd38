#include "kernel.h"

#include <cmath>
#include <vector>

namespace ledrec {

double pairwise_sum(const double* a, std::size_t n) {
  if (n < 8) {
    double res = 0.;
    for (std::size_t i = 0; i < n; i++) res += a[i];
    return res;
  }
  if (n <= 128) {  // numpy's PW_BLOCKSIZE: eight running sums, combined as a tree
    double r[8];
    for (int j = 0; j < 8; j++) r[j] = a[j];
    std::size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; j++) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[i];
    return res;
  }
  std::size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

float canonical_dot(const float* row, const float* query, std::size_t D, double* scratch) {
  for (std::size_t j = 0; j < D; j++) scratch[j] = static_cast<double>(row[j]) * static_cast<double>(query[j]);
  return static_cast<float>(pairwise_sum(scratch, D));
}

void user_vector(const float* encoder, std::size_t d, const int64_t* items, std::size_t T, bool mean,
                 const double* query_map, float* out, double* scratch) {
  double* u = scratch;  // d
  if (T == 0) {
    for (std::size_t i = 0; i < d; i++) out[i] = 0.f;
    return;
  }
  if (d == 1) {  // numpy sums a (T, 1) column along its contiguous axis: pairwise
    double* column = scratch + 1;
    for (std::size_t t = 0; t < T; t++) column[t] = encoder[items[t]];
    u[0] = pairwise_sum(column, T);
  } else {  // (T, d) rows along axis 0: one row after the other
    for (std::size_t i = 0; i < d; i++) u[i] = static_cast<double>(encoder[items[0] * d + i]);
    for (std::size_t t = 1; t < T; t++) {
      const float* row = encoder + items[t] * d;
      for (std::size_t i = 0; i < d; i++) u[i] += static_cast<double>(row[i]);
    }
  }
  const double norm = mean ? static_cast<double>(T) : std::sqrt(static_cast<double>(T));
  for (std::size_t i = 0; i < d; i++) u[i] /= norm;
  if (query_map == nullptr) {
    for (std::size_t i = 0; i < d; i++) out[i] = static_cast<float>(u[i]);
    return;
  }
  double* q = scratch + d;  // q_i = sum_j u_j Q_ji, j in order (numpy: (u[:, None] * Q).sum(axis=0))
  if (d == 1) {
    out[0] = static_cast<float>(u[0] * query_map[0]);
    return;
  }
  for (std::size_t i = 0; i < d; i++) q[i] = u[0] * query_map[i];
  for (std::size_t j = 1; j < d; j++) {
    const double uj = u[j];
    const double* row = query_map + j * d;
    for (std::size_t i = 0; i < d; i++) q[i] += uj * row[i];
  }
  for (std::size_t i = 0; i < d; i++) out[i] = static_cast<float>(q[i]);
}

}  // namespace ledrec
