// The data model: external ids mapped to dense indices, raw events, and the
// side information (item attributes, user attributes) the loaders fill.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace shardrec::core {

// Dense local index of a user or an item. Indices are assigned in order of
// first appearance, so the same input gives the same indices.
using index_t = std::uint32_t;

enum class event_type : std::uint8_t {
  view = 0,
  click = 1,
  cart = 2,
  purchase = 3,
  rating = 4,
  cancel = 5, // a cancelled purchase: negative feedback
};
inline constexpr int event_type_count = 6;

const char* to_string(event_type t);
// Accepts the names above (case-insensitive) and "return" for cancel.
std::optional<event_type> parse_event_type(std::string_view s);

// Maps external ids (strings; 64-bit integers are kept in decimal form) to
// dense indices 0..size()-1 and back.
class id_map {
public:
  // Returns the index of `id`, adding it if it is new.
  index_t intern(std::string_view id);
  std::optional<index_t> find(std::string_view id) const;
  // REQUIRES: i < size()
  const std::string& external(index_t i) const { return ids_[i]; }
  std::size_t size() const { return ids_.size(); }

private:
  std::unordered_map<std::string, index_t> index_;
  std::vector<std::string> ids_;
};

// One behaviour event or rating. `value` is the rating for explicit data and
// the event weight (quantity, 1 for a view) for implicit data.
struct event {
  index_t user = 0;
  index_t item = 0;
  float value = 1.0f;
  event_type type = event_type::rating;
  std::uint16_t device = 0;   // index into dataset::devices; 0 = unknown
  std::uint16_t location = 0; // index into dataset::locations; 0 = unknown
  std::int64_t timestamp = 0; // seconds since the Unix epoch; 0 = unknown
};

struct item_info {
  std::string title;
  std::vector<std::string> genres; // categorical attributes
  std::vector<std::string> tags;   // free tags (user-applied or catalogue)
  std::string text;                // free text (description)
};

struct user_info {
  std::vector<std::pair<std::string, std::string>> attributes; // name, value
};

struct rating_scale {
  float min = 1.0f;
  float max = 5.0f;
};

// Everything a loader produces. Side tables are indexed by the dense index
// and may be shorter than the id maps (missing = no information).
struct dataset {
  id_map users;
  id_map items;
  std::vector<event> events;
  std::vector<item_info> item_meta;
  std::vector<user_info> user_meta;
  id_map devices;   // index 0 is "" (unknown), interned on construction
  id_map locations; // likewise
  rating_scale scale;

  dataset() {
    devices.intern("");
    locations.intern("");
  }

  // Returns the item's info, growing item_meta as needed.
  item_info& item_meta_at(index_t i);
  user_info& user_meta_at(index_t u);
};

} // namespace shardrec::core
