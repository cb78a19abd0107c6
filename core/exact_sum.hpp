// A sum of doubles that does not depend on the order of its terms: each term
// is rounded once to a multiple of 2^-64 and the multiples are added as
// 128-bit integers, which is associative. Partial sums made in any grouping
// (threads, partitions of a cluster) and merged in any order give the same
// bits, so a distributed sampler whose draws depend on a global sum (the
// Gibbs sampler's SSE and row moments, core/mf.hpp) equals the
// single-process one exactly.
//
// Range: |term| below 2^61 (2.3e18), |sum| below 2^63 (9.2e18); precision
// 2^-64 (5.4e-20) absolute per term. A term outside the range or not
// finite, or a sum that leaves it, poisons the sum: value() is then NaN.
#pragma once

#include <cmath>
#include <cstdint>

namespace shardrec::core {

class exact_sum {
public:
  exact_sum() = default;

  void add(double v) {
    if (!(std::fabs(v) < 0x1p61)) {
      bad_ = true;
      return;
    }
    const double scaled = std::nearbyint(std::ldexp(v, 64)); // exact: |scaled| < 2^125
    bad_ = __builtin_add_overflow(acc_, static_cast<i128>(scaled), &acc_) || bad_;
  }
  void add(const exact_sum& o) {
    bad_ = __builtin_add_overflow(acc_, o.acc_, &acc_) || bad_ || o.bad_;
  }

  // The sum rounded to the nearest double (NaN if poisoned).
  double value() const {
    if (bad_)
      return std::nan("");
    return std::ldexp(static_cast<double>(acc_), -64);
  }

  // The 128 bits and the poison flag, for the wire.
  std::uint64_t high() const {
    return static_cast<std::uint64_t>(static_cast<u128>(acc_) >> 64);
  }
  std::uint64_t low() const { return static_cast<std::uint64_t>(static_cast<u128>(acc_)); }
  bool poisoned() const { return bad_; }
  static exact_sum from_bits(std::uint64_t high, std::uint64_t low, bool poisoned) {
    exact_sum s;
    // Two's complement (GCC and Clang define the unsigned-to-signed
    // conversion so).
    s.acc_ = static_cast<i128>((static_cast<u128>(high) << 64) | low);
    s.bad_ = poisoned;
    return s;
  }

  friend bool operator==(const exact_sum& a, const exact_sum& b) {
    return a.acc_ == b.acc_ && a.bad_ == b.bad_;
  }

private:
  __extension__ typedef __int128 i128;
  __extension__ typedef unsigned __int128 u128;
  i128 acc_ = 0;
  bool bad_ = false;
};

} // namespace shardrec::core
