#include "core/interactions.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace shardrec::core {

float event_confidence(event_type type, float value) {
  const float q = std::log2(1.0f + std::max(0.0f, value));
  switch (type) {
    case event_type::view: return q;
    case event_type::click: return 2.0f * q;
    case event_type::cart: return 3.0f * q;
    case event_type::purchase: return 4.0f * q;
    case event_type::cancel: return -4.0f * q;
    case event_type::rating: return value;
  }
  return q;
}

interaction_matrix interaction_matrix::build(std::size_t n_users, std::size_t n_items,
                                             const std::vector<event>& events,
                                             merge_policy policy) {
  interaction_matrix m;
  m.n_users_ = n_users;
  m.n_items_ = n_items;

  // Order event positions by (user, item, timestamp, input order); a counting
  // pass by user keeps this O(E log d) rather than O(E log E).
  std::vector<std::uint64_t> count(n_users + 1, 0);
  for (const auto& e : events)
    if (e.user < n_users && e.item < n_items)
      ++count[e.user + 1];
  std::partial_sum(count.begin(), count.end(), count.begin());
  std::vector<std::uint32_t> order(count[n_users]);
  {
    auto fill = count;
    for (std::size_t k = 0; k < events.size(); ++k) {
      const auto& e = events[k];
      if (e.user < n_users && e.item < n_items)
        order[fill[e.user]++] = static_cast<std::uint32_t>(k);
    }
  }
  m.u_ptr_.assign(n_users + 1, 0);
  m.u_item_.reserve(order.size());
  m.u_value_.reserve(order.size());
  m.u_time_.reserve(order.size());
  m.u_type_.reserve(order.size());
  for (std::size_t u = 0; u < n_users; ++u) {
    auto b = order.begin() + static_cast<std::ptrdiff_t>(count[u]);
    auto e = order.begin() + static_cast<std::ptrdiff_t>(count[u + 1]);
    std::stable_sort(b, e, [&](std::uint32_t x, std::uint32_t y) {
      const auto& a = events[x];
      const auto& c = events[y];
      if (a.item != c.item)
        return a.item < c.item;
      return a.timestamp < c.timestamp;
    });
    for (auto it = b; it != e;) {
      const auto& first = events[*it];
      float v = first_cell_value(policy, first.type, first.value);
      std::int64_t ts = first.timestamp;
      event_type type = first.type;
      auto jt = it + 1;
      for (; jt != e && events[*jt].item == first.item; ++jt) {
        const auto& x = events[*jt];
        v = merge_cell_value(policy, v, x.type, x.value);
        ts = std::max(ts, x.timestamp);
        type = std::max(type, x.type);
      }
      m.u_item_.push_back(first.item);
      m.u_value_.push_back(v);
      m.u_time_.push_back(static_cast<std::uint32_t>(
          std::clamp<std::int64_t>(ts, 0, std::int64_t{UINT32_MAX})));
      m.u_type_.push_back(type);
      it = jt;
    }
    m.u_ptr_[u + 1] = m.u_item_.size();
  }

  // Transpose into item-major order; iterating users ascending keeps each
  // column's user indices sorted.
  m.i_ptr_.assign(n_items + 1, 0);
  for (auto i : m.u_item_)
    ++m.i_ptr_[i + 1];
  std::partial_sum(m.i_ptr_.begin(), m.i_ptr_.end(), m.i_ptr_.begin());
  m.i_user_.resize(m.u_item_.size());
  m.i_value_.resize(m.u_item_.size());
  auto fill = m.i_ptr_;
  for (std::size_t u = 0; u < n_users; ++u)
    for (auto k = m.u_ptr_[u]; k < m.u_ptr_[u + 1]; ++k) {
      auto pos = fill[m.u_item_[k]]++;
      m.i_user_[pos] = static_cast<index_t>(u);
      m.i_value_[pos] = m.u_value_[k];
    }
  return m;
}

const float* interaction_matrix::find(index_t u, index_t i) const {
  auto r = user_row(u);
  auto it = std::lower_bound(r.index, r.index + r.size, i);
  if (it == r.index + r.size || *it != i)
    return nullptr;
  return r.value + (it - r.index);
}

interaction_matrix interaction_matrix::binarized() const {
  interaction_matrix m = *this;
  std::fill(m.u_value_.begin(), m.u_value_.end(), 1.0f);
  std::fill(m.i_value_.begin(), m.i_value_.end(), 1.0f);
  return m;
}

double interaction_matrix::mean_value() const {
  if (u_value_.empty())
    return 0.0;
  double s = 0;
  for (float v : u_value_)
    s += v;
  return s / static_cast<double>(u_value_.size());
}

std::size_t interaction_matrix::memory_bytes() const {
  return u_ptr_.size() * sizeof(std::uint64_t) + u_item_.size() * sizeof(index_t)
         + u_value_.size() * sizeof(float) + u_time_.size() * sizeof(std::uint32_t)
         + u_type_.size() * sizeof(event_type) + i_ptr_.size() * sizeof(std::uint64_t)
         + i_user_.size() * sizeof(index_t) + i_value_.size() * sizeof(float);
}

} // namespace shardrec::core
