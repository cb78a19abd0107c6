#include "core/dataset.hpp"

#include <algorithm>
#include <cctype>

namespace shardrec::core {

const char* to_string(event_type t) {
  switch (t) {
    case event_type::view: return "view";
    case event_type::click: return "click";
    case event_type::cart: return "cart";
    case event_type::purchase: return "purchase";
    case event_type::rating: return "rating";
    case event_type::cancel: return "cancel";
  }
  return "unknown";
}

std::optional<event_type> parse_event_type(std::string_view s) {
  std::string low(s);
  std::transform(low.begin(), low.end(), low.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (low == "view")
    return event_type::view;
  if (low == "click")
    return event_type::click;
  if (low == "cart" || low == "add_to_cart")
    return event_type::cart;
  if (low == "purchase" || low == "buy")
    return event_type::purchase;
  if (low == "rating" || low == "rate")
    return event_type::rating;
  if (low == "cancel" || low == "return")
    return event_type::cancel;
  return std::nullopt;
}

index_t id_map::intern(std::string_view id) {
  auto it = index_.find(std::string(id));
  if (it != index_.end())
    return it->second;
  auto idx = static_cast<index_t>(ids_.size());
  ids_.emplace_back(id);
  index_.emplace(ids_.back(), idx);
  return idx;
}

std::optional<index_t> id_map::find(std::string_view id) const {
  auto it = index_.find(std::string(id));
  if (it == index_.end())
    return std::nullopt;
  return it->second;
}

item_info& dataset::item_meta_at(index_t i) {
  if (item_meta.size() <= i)
    item_meta.resize(static_cast<std::size_t>(i) + 1);
  return item_meta[i];
}

user_info& dataset::user_meta_at(index_t u) {
  if (user_meta.size() <= u)
    user_meta.resize(static_cast<std::size_t>(u) + 1);
  return user_meta[u];
}

} // namespace shardrec::core
