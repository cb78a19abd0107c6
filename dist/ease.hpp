// Distributed EASE (core/ease.hpp) over partition stores: the item Gram
// matrix summed from per-partition partials (as the iALS Gram is), solved
// once, and each item's column of weights sent to the item's owner, which
// scores a user as the core does: score(j) = sum over the user's items i of
// B[i][j]. For catalogues up to a configurable size (the Gram and B are
// dense: n^2 entries).
//
// MESSAGE FLOW (P partitions):
//   E1 each partition p:  ease_items(store_p) -> owned items with a cell
//                         (ids) -> coordinator.
//   E2 coordinator:       ease_catalogue(all P lists): the global item order,
//                         ascending (stable_hash(id), id), the order in which
//                         core::ease_weights solves when given the keys, so
//                         that the two agree bit for bit -> every partition.
//   E3 each partition p:  ease_gram_partial(store_p, catalogue): the
//                         co-occurrence counts of its owned users' items
//                         (binarized rows), lower triangle -> coordinator.
//   E4 coordinator:       sum_ease_gram (integer counts: the sum does not
//                         depend on the order), then ease_solve(catalogue,
//                         gram, lambda) -> B.
//   E5 coordinator -> p:  ease_columns(B, catalogue, owned items of p): each
//                         owned item's column (weights from every item).
// Plain values: the shards and the trainer ship them (actors/), tests run
// them in one process against the core.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/ease.hpp"
#include "core/error.hpp"
#include "dist/partition_store.hpp"

namespace shardrec::dist {

using namespace shardrec::core;

// E1: the owned items with at least one cell in the last build.
std::vector<std::string> ease_items(const partition_store& store);

// E2: the union of every partition's items in (stable_hash, id) order.
// invalid_argument when an id appears twice (two partitions own it) or the
// catalogue has more than max_items items (EASE is dense in the catalogue).
struct ease_catalogue {
  std::vector<std::string> items;  // global order
  std::vector<std::uint64_t> keys; // stable_hash of items, ascending
  // Position of an id in `items` (binary search by key); none if absent.
  static constexpr std::uint32_t none = ~std::uint32_t{0};
  std::uint32_t position(const std::string& id) const;
};
result<ease_catalogue>
make_ease_catalogue(const std::vector<std::vector<std::string>>& parts,
                    std::size_t max_items);

// E3: the lower triangle (row a, column b <= a; row-major, a (a + 1) / 2 + b)
// of the co-occurrence counts of the partition's owned users' rows, over
// catalogue positions; items of a row absent from the catalogue are skipped.
using ease_gram = std::vector<std::uint32_t>;
ease_gram ease_gram_partial(const partition_store& store, const ease_catalogue& cat);

// E4: the sum of the partials; invalid_argument for a partial of another size.
result<ease_gram> sum_ease_gram(const std::vector<ease_gram>& parts, std::size_t n_items);

// E4: B for the catalogue order (row i: the weights item i gives every item),
// as core::ease_weights solves it. REQUIRES: lambda > 0, gram of n(n+1)/2.
ease_matrix ease_solve(const ease_gram& gram, std::size_t n_items, float lambda);

// E5: for each owned item (ids; those absent from the catalogue get zeros),
// its column of B: n_items weights, item i's weight for it at position i;
// row-major, owned.size() x n_items.
std::vector<float> ease_columns(const ease_matrix& b, const ease_catalogue& cat,
                                const std::vector<std::string>& owned);

} // namespace shardrec::dist
