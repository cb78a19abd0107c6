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
//   E3 each partition p:  ease_user_rows(store_p, catalogue): its owned
//                         users' rows as catalogue positions (binarized,
//                         ascending) -> coordinator. A row costs its length
//                         on the wire, where a co-occurrence partial would
//                         cost n^2/2 counts per partition.
//   E4 coordinator:       add_ease_gram for every partition's rows (integer
//                         counts: the sum does not depend on the order),
//                         then ease_solve(gram, n, lambda) -> B.
//   E5 coordinator -> p:  ease_columns(B, catalogue, owned items of p): each
//                         owned item's column (weights from every item), in
//                         chunks under the frame limit.
// Memory at the coordinator: the Gram (n^2/2 u32, then n^2 doubles twice
// during the solve) and B (n^2 floats); at each partition its owned items'
// columns (owned x n floats).
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

// E3: the owned users' rows over catalogue positions, CSR: row r is the
// next length[r] entries of position, strictly ascending; items absent from
// the catalogue are skipped, empty rows left out.
struct ease_rows {
  std::vector<std::uint32_t> length;
  std::vector<std::uint32_t> position;
};
ease_rows ease_user_rows(const partition_store& store, const ease_catalogue& cat);

// E4: adds the co-occurrence counts of `rows` to the lower triangle `gram`
// (row a, column b <= a; row-major, a (a + 1) / 2 + b) of an n_items
// catalogue. invalid_argument (gram unchanged) for a gram of another size,
// lengths that do not add up, a position >= n_items or a row that is not
// strictly ascending.
using ease_gram = std::vector<std::uint32_t>;
status add_ease_gram(ease_gram& gram, std::size_t n_items, const ease_rows& rows);

// E4: B for the catalogue order (row i: the weights item i gives every item),
// as core::ease_weights solves it. REQUIRES: lambda > 0, gram of n(n+1)/2.
ease_matrix ease_solve(const ease_gram& gram, std::size_t n_items, float lambda,
                       unsigned threads = 1);

// E5: for each owned item (ids; those absent from the catalogue get zeros),
// its column of B: n_items weights, item i's weight for it at position i;
// row-major, owned.size() x n_items.
std::vector<float> ease_columns(const ease_matrix& b, const ease_catalogue& cat,
                                const std::vector<std::string>& owned);

} // namespace shardrec::dist
