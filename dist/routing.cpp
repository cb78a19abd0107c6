#include "dist/routing.hpp"

#include "core/partition.hpp"

namespace shardrec::dist {

routed_events route_events(std::vector<raw_event> events, std::uint32_t partitions,
                           std::size_t first_index) {
  SHARDREC_ASSERT(partitions > 0);
  routed_events out;
  out.per_partition.resize(partitions);
  for (std::size_t k = 0; k < events.size(); ++k) {
    auto& e = events[k];
    if (auto v = validate(e); !v) {
      ++out.rejected;
      if (out.problems.size() < max_problems)
        out.problems.push_back("event " + std::to_string(first_index + k) + ": "
                               + v.err().message);
      continue;
    }
    ++out.accepted;
    auto pu = partition_of(e.user, partitions);
    auto pi = partition_of(e.item, partitions);
    if (pi != pu)
      out.per_partition[pi].push_back(e);
    out.per_partition[pu].push_back(std::move(e));
  }
  return out;
}

std::vector<std::vector<item_entry>> route_items(std::vector<item_entry> items,
                                                 std::uint32_t partitions) {
  SHARDREC_ASSERT(partitions > 0);
  std::vector<std::vector<item_entry>> out(partitions);
  for (auto& it : items)
    out[partition_of(it.first, partitions)].push_back(std::move(it));
  return out;
}

} // namespace shardrec::dist
