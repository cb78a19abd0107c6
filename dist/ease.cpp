#include "dist/ease.hpp"

#include <algorithm>
#include <tuple>

#include "core/partition.hpp"

namespace shardrec::dist {

namespace {

error bad(std::string what) {
  return make_error(errc::invalid_argument, std::move(what));
}

std::size_t tri(std::size_t a, std::size_t b) {
  return a * (a + 1) / 2 + b;
}

} // namespace

std::vector<std::string> ease_items(const partition_store& store) {
  std::vector<std::string> out;
  const auto& m = store.item_matrix();
  for (std::size_t i = 0; i < m.n_items() && i < store.items().size(); ++i)
    if (m.item_degree(static_cast<index_t>(i)) > 0)
      out.push_back(store.items().external(static_cast<index_t>(i)));
  return out;
}

std::uint32_t ease_catalogue::position(const std::string& id) const {
  const auto k = stable_hash(id);
  auto it = std::lower_bound(keys.begin(), keys.end(), k);
  for (; it != keys.end() && *it == k; ++it) {
    const auto p = static_cast<std::size_t>(it - keys.begin());
    if (items[p] == id)
      return static_cast<std::uint32_t>(p);
  }
  return none;
}

result<ease_catalogue>
make_ease_catalogue(const std::vector<std::vector<std::string>>& parts,
                    std::size_t max_items) {
  std::vector<std::pair<std::uint64_t, std::string>> all;
  for (const auto& p : parts)
    for (const auto& id : p)
      all.emplace_back(stable_hash(id), id);
  if (all.size() > max_items)
    return bad("EASE: the catalogue has " + std::to_string(all.size())
               + " items, more than its limit of " + std::to_string(max_items));
  std::sort(all.begin(), all.end());
  ease_catalogue c;
  for (std::size_t k = 0; k < all.size(); ++k) {
    if (!c.items.empty() && c.keys.back() == all[k].first
        && c.items.back() == all[k].second)
      return bad("EASE: item '" + all[k].second + "' comes from two partitions");
    c.keys.push_back(all[k].first);
    c.items.push_back(std::move(all[k].second));
  }
  return c;
}

ease_rows ease_user_rows(const partition_store& store, const ease_catalogue& cat) {
  ease_rows out;
  // Catalogue position of every item the owned users touched.
  const auto& refs = store.item_refs();
  std::vector<std::uint32_t> pos(refs.size());
  for (std::size_t r = 0; r < refs.size(); ++r)
    pos[r] = cat.position(refs.external(static_cast<index_t>(r)));
  const auto& m = store.user_matrix();
  for (index_t u = 0; u < m.n_users(); ++u) {
    auto cells = m.user_row(u);
    const auto start = out.position.size();
    for (std::size_t k = 0; k < cells.size; ++k)
      if (cells.index[k] < pos.size() && pos[cells.index[k]] != ease_catalogue::none)
        out.position.push_back(pos[cells.index[k]]);
    auto first = out.position.begin() + static_cast<std::ptrdiff_t>(start);
    std::sort(first, out.position.end());
    out.position.erase(std::unique(first, out.position.end()), out.position.end());
    if (out.position.size() > start)
      out.length.push_back(static_cast<std::uint32_t>(out.position.size() - start));
  }
  return out;
}

status add_ease_gram(ease_gram& gram, std::size_t n_items, const ease_rows& rows) {
  if (gram.size() != n_items * (n_items + 1) / 2)
    return bad("EASE: a Gram of " + std::to_string(gram.size()) + " values, expected "
               + std::to_string(n_items * (n_items + 1) / 2));
  // Check everything first: a bad message leaves the sum as it was.
  std::uint64_t total = 0;
  for (auto len : rows.length)
    total += len;
  if (total != rows.position.size())
    return bad("EASE rows: lengths add up to " + std::to_string(total) + ", "
               + std::to_string(rows.position.size()) + " positions given");
  std::size_t k = 0;
  for (auto len : rows.length) {
    for (std::size_t a = 0; a < len; ++a, ++k)
      if (rows.position[k] >= n_items
          || (a > 0 && rows.position[k] <= rows.position[k - 1]))
        return bad("EASE rows: position " + std::to_string(rows.position[k])
                   + " out of range or order (catalogue of " + std::to_string(n_items)
                   + " items)");
  }
  k = 0;
  for (auto len : rows.length) {
    const auto* row = rows.position.data() + k;
    for (std::size_t a = 0; a < len; ++a) {
      auto* line = gram.data() + tri(row[a], 0);
      for (std::size_t b = 0; b <= a; ++b)
        ++line[row[b]];
    }
    k += len;
  }
  return {};
}

ease_matrix ease_solve(const ease_gram& gram, std::size_t n_items, float lambda,
                       unsigned threads) {
  SHARDREC_ASSERT(gram.size() == n_items * (n_items + 1) / 2);
  const auto n = static_cast<Eigen::Index>(n_items);
  Eigen::MatrixXd g = Eigen::MatrixXd::Zero(n, n);
  for (std::size_t a = 0; a < n_items; ++a)
    for (std::size_t b = 0; b <= a; ++b)
      g(static_cast<Eigen::Index>(a), static_cast<Eigen::Index>(b)) = gram[tri(a, b)];
  return ease_from_gram(std::move(g), lambda, threads);
}

std::vector<float> ease_columns(const ease_matrix& b, const ease_catalogue& cat,
                                const std::vector<std::string>& owned) {
  const auto n = cat.items.size();
  std::vector<float> out(owned.size() * n, 0.0f);
  for (std::size_t r = 0; r < owned.size(); ++r) {
    const auto j = cat.position(owned[r]);
    if (j == ease_catalogue::none)
      continue;
    for (std::size_t i = 0; i < n; ++i)
      out[r * n + i] = b(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j));
  }
  return out;
}

} // namespace shardrec::dist
