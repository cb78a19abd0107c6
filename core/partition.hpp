// Which partition owns a user or an item: a pure function of the external id,
// the same in every process and on every machine.
#pragma once

#include <cstdint>
#include <string_view>

namespace shardrec::core {

// 64-bit FNV-1a of the id's bytes. Stable across compilers and platforms
// (std::hash is not), so partitions never move when a binary is rebuilt.
inline std::uint64_t stable_hash(std::string_view id) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : id) {
    h ^= c;
    h *= 1099511628211ull;
  }
  // Final avalanche (splitmix64) so that ids differing in the last byte
  // spread over all partitions.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

// REQUIRES: partitions >= 1
inline std::uint32_t partition_of(std::string_view id, std::uint32_t partitions) {
  return static_cast<std::uint32_t>(stable_hash(id) % partitions);
}

} // namespace shardrec::core
