#include "dist/partition_store.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <utility>

#include "core/partition.hpp"

namespace shardrec::dist {

status validate(const raw_event& e) {
  if (e.user.empty())
    return make_error(errc::invalid_argument, "field 'user': empty id");
  if (e.item.empty())
    return make_error(errc::invalid_argument, "field 'item': empty id");
  if (!std::isfinite(e.value))
    return make_error(errc::invalid_argument, "field 'value': not a finite number");
  if (static_cast<int>(e.type) >= event_type_count)
    return make_error(errc::invalid_argument, "field 'type': unknown event type");
  return {};
}

partition_store::partition_store(std::uint32_t partition, std::uint32_t partitions)
    : partition_(partition), partitions_(partitions) {
  SHARDREC_ASSERT(partitions > 0 && partition < partitions);
  devices_.intern("");
  locations_.intern("");
}

bool partition_store::owns_user(std::string_view user) const {
  return partition_of(user, partitions_) == partition_;
}

bool partition_store::owns_item(std::string_view item) const {
  return partition_of(item, partitions_) == partition_;
}

status partition_store::add(const raw_event& e) {
  if (auto st = validate(e); !st)
    return st;
  ++changes_;
  event ev;
  ev.value = e.value;
  ev.type = e.type;
  ev.timestamp = e.timestamp;
  ev.device = static_cast<std::uint16_t>(devices_.intern(e.device));
  ev.location = static_cast<std::uint16_t>(locations_.intern(e.location));
  if (owns_user(e.user)) {
    ev.user = users_.intern(e.user);
    ev.item = item_refs_.intern(e.item);
    user_side_.push_back(ev);
    if (user_event_count_.size() <= ev.user)
      user_event_count_.resize(std::size_t{ev.user} + 1, 0);
    ++user_event_count_[ev.user];
    note_recent(ev.user, ev.item, ev.value, ev.type);
    built_ = false;
  }
  if (owns_item(e.item)) {
    ev.user = user_refs_.intern(e.user);
    ev.item = items_.intern(e.item);
    item_side_.push_back(ev);
    built_ = false;
  }
  return {};
}

void partition_store::set_item_info(const std::string& item, item_info info) {
  if (!owns_item(item))
    return;
  ++changes_;
  auto i = items_.intern(item);
  if (item_meta_.size() <= i)
    item_meta_.resize(static_cast<std::size_t>(i) + 1);
  item_meta_[i] = std::move(info);
  built_ = false;
}

void partition_store::note_recent(index_t user, index_t item_ref, float value,
                                  event_type type) {
  // Before the first build nothing is served: the build takes every event.
  if (!built_once_)
    return;
  // An item already in the user's row of the last build is seen already;
  // its cell's value changes as the build would merge the event in.
  const auto policy = built_policy_;
  if (user < user_matrix_.n_users()) {
    if (auto cell = user_matrix_.find(user, item_ref)) {
      auto& updates = updated_[user];
      for (auto& r : updates)
        if (r.item_ref == item_ref) {
          r.value = merge_cell_value(policy, r.value, type, value);
          r.type = type;
          return;
        }
      updates.push_back({item_ref, merge_cell_value(policy, *cell, type, value), type});
      return;
    }
  }
  auto& items = recent_[user];
  for (auto& r : items)
    if (r.item_ref == item_ref) {
      r.value = merge_cell_value(policy, r.value, type, value);
      r.type = type;
      return;
    }
  items.push_back({item_ref, first_cell_value(policy, type, value), type});
}

const std::vector<partition_store::recent_item>&
partition_store::row_updates(index_t user) const {
  static const std::vector<recent_item> none;
  auto it = updated_.find(user);
  return it == updated_.end() ? none : it->second;
}

const std::vector<partition_store::recent_item>&
partition_store::recent_items(index_t user) const {
  static const std::vector<recent_item> none;
  auto it = recent_.find(user);
  return it == recent_.end() ? none : it->second;
}

void partition_store::build(merge_policy policy) {
  recent_.clear();
  updated_.clear();
  user_matrix_ =
      interaction_matrix::build(users_.size(), item_refs_.size(), user_side_, policy);
  item_matrix_ =
      interaction_matrix::build(user_refs_.size(), items_.size(), item_side_, policy);
  built_ = true;
  built_once_ = true;
  built_policy_ = policy;
  binarized_ = false;
  built_user_events_ = user_side_.size();
  built_item_events_ = item_side_.size();
}

partition_store partition_store::binarized() const {
  SHARDREC_ASSERT(built_);
  partition_store b = *this;
  b.user_matrix_ = user_matrix_.binarized();
  b.item_matrix_ = item_matrix_.binarized();
  b.binarized_ = true;
  return b;
}

// ---- image ------------------------------------------------------------------

namespace {

std::vector<std::string> ids_of(const id_map& m) {
  std::vector<std::string> ids;
  ids.reserve(m.size());
  for (std::size_t i = 0; i < m.size(); ++i)
    ids.push_back(m.external(static_cast<index_t>(i)));
  return ids;
}

error bad_image(const std::string& what) {
  return make_error(errc::invalid_argument, "store image: " + what);
}

// Interns `ids` in order into m, which holds the first `skip` of them already.
status intern_all(id_map& m, const std::vector<std::string>& ids, std::size_t skip,
                  const char* field) {
  for (std::size_t k = skip; k < ids.size(); ++k)
    if (m.intern(ids[k]) != k)
      return bad_image(std::string(field) + "[" + std::to_string(k) + "] '" + ids[k]
                       + "' is a duplicate of an earlier id");
  return {};
}

// Every id of `ids` belongs to partition p of `partitions`.
status owned_all(const std::vector<std::string>& ids, std::uint32_t p,
                 std::uint32_t partitions, const char* field) {
  for (std::size_t k = 0; k < ids.size(); ++k)
    if (partition_of(ids[k], partitions) != p)
      return bad_image(std::string(field) + "[" + std::to_string(k) + "] '" + ids[k]
                       + "' belongs to partition "
                       + std::to_string(partition_of(ids[k], partitions))
                       + ", not to partition " + std::to_string(p));
  return {};
}

// The events of one side: indices within the id lists (the first `built`
// within the shape of the last build), a known type, a finite value.
struct side_shape {
  const char* name;
  std::size_t users, items, built_users, built_items, built_events;
};

status check_events(const std::vector<event>& events, const side_shape& shape,
                    std::size_t devices, std::size_t locations) {
  for (std::size_t k = 0; k < events.size(); ++k) {
    const auto& e = events[k];
    const bool built = k < shape.built_events;
    const char* problem = nullptr;
    if (e.user >= (built ? shape.built_users : shape.users))
      problem = built ? "user outside the last build" : "user out of range";
    else if (e.item >= (built ? shape.built_items : shape.items))
      problem = built ? "item outside the last build" : "item out of range";
    else if (e.device >= devices)
      problem = "device out of range";
    else if (e.location >= locations)
      problem = "location out of range";
    else if (static_cast<int>(e.type) >= event_type_count)
      problem = "unknown event type";
    else if (!std::isfinite(e.value))
      problem = "value not finite";
    if (problem)
      return bad_image(std::string(shape.name) + "[" + std::to_string(k)
                       + "]: " + problem);
  }
  return {};
}

// The matrix of the first k events (a build ignores none of them: checked).
interaction_matrix build_prefix(std::size_t n_users, std::size_t n_items,
                                const std::vector<event>& events, std::size_t k,
                                merge_policy policy) {
  if (k == events.size())
    return interaction_matrix::build(n_users, n_items, events, policy);
  std::vector<event> prefix(events.begin(),
                            events.begin() + static_cast<std::ptrdiff_t>(k));
  return interaction_matrix::build(n_users, n_items, prefix, policy);
}

} // namespace

store_image partition_store::image() const {
  store_image im;
  im.partition = partition_;
  im.partitions = partitions_;
  im.users = ids_of(users_);
  im.item_refs = ids_of(item_refs_);
  im.items = ids_of(items_);
  im.user_refs = ids_of(user_refs_);
  im.devices = ids_of(devices_);
  im.locations = ids_of(locations_);
  im.user_side = user_side_;
  im.item_side = item_side_;
  im.item_meta = item_meta_;
  im.built = built_;
  im.built_once = built_once_;
  im.built_policy = built_policy_;
  im.binarized = binarized_;
  im.built_users = user_matrix_.n_users();
  im.built_item_refs = user_matrix_.n_items();
  im.built_user_events = built_user_events_;
  im.built_user_refs = item_matrix_.n_users();
  im.built_items = item_matrix_.n_items();
  im.built_item_events = built_item_events_;
  return im;
}

result<partition_store> partition_store::from_image(store_image im) {
  if (im.partitions == 0 || im.partition >= im.partitions)
    return bad_image("partition " + std::to_string(im.partition) + " of "
                     + std::to_string(im.partitions) + " partitions");
  if (im.built_policy != merge_policy::last && im.built_policy != merge_policy::sum
      && im.built_policy != merge_policy::max
      && im.built_policy != merge_policy::confidence)
    return bad_image("unknown merge policy "
                     + std::to_string(static_cast<int>(im.built_policy)));
  for (const auto* ids : {&im.devices, &im.locations})
    if (ids->empty() || !ids->front().empty())
      return bad_image(std::string(ids == &im.devices ? "devices" : "locations")
                       + " do not start with the unknown id \"\"");
  const bool counts_zero = im.built_users == 0 && im.built_item_refs == 0
                           && im.built_user_events == 0 && im.built_user_refs == 0
                           && im.built_items == 0 && im.built_item_events == 0;
  if (!im.built_once && (im.built || im.binarized || !counts_zero))
    return bad_image("built, binarized or build counts without a build");
  // The last build's shape and events: within what the store holds, and all of
  // it while the store is still built.
  const std::pair<std::uint64_t, std::size_t> counts[] = {
      {im.built_users, im.users.size()},
      {im.built_item_refs, im.item_refs.size()},
      {im.built_user_events, im.user_side.size()},
      {im.built_user_refs, im.user_refs.size()},
      {im.built_items, im.items.size()},
      {im.built_item_events, im.item_side.size()}};
  static const char* const count_names[] = {"users",     "item_refs", "user events",
                                            "user_refs", "items",     "item events"};
  for (std::size_t c = 0; c < std::size(counts); ++c) {
    const auto [at_build, now] = counts[c];
    if (at_build > now || (im.built && at_build != now))
      return bad_image("the last build had " + std::to_string(at_build) + " "
                       + count_names[c] + ", the store has " + std::to_string(now)
                       + (im.built ? " and is built" : ""));
  }
  if (im.item_meta.size() > im.items.size())
    return bad_image("item_meta has " + std::to_string(im.item_meta.size())
                     + " entries for " + std::to_string(im.items.size()) + " items");
  for (auto st : {owned_all(im.users, im.partition, im.partitions, "users"),
                  owned_all(im.items, im.partition, im.partitions, "items"),
                  check_events(im.user_side,
                               {"user_side", im.users.size(), im.item_refs.size(),
                                static_cast<std::size_t>(im.built_users),
                                static_cast<std::size_t>(im.built_item_refs),
                                static_cast<std::size_t>(im.built_user_events)},
                               im.devices.size(), im.locations.size()),
                  check_events(im.item_side,
                               {"item_side", im.user_refs.size(), im.items.size(),
                                static_cast<std::size_t>(im.built_user_refs),
                                static_cast<std::size_t>(im.built_items),
                                static_cast<std::size_t>(im.built_item_events)},
                               im.devices.size(), im.locations.size())})
    if (!st)
      return st.err();

  partition_store s(im.partition, im.partitions);
  for (auto st : {intern_all(s.users_, im.users, 0, "users"),
                  intern_all(s.item_refs_, im.item_refs, 0, "item_refs"),
                  intern_all(s.items_, im.items, 0, "items"),
                  intern_all(s.user_refs_, im.user_refs, 0, "user_refs"),
                  intern_all(s.devices_, im.devices, 1, "devices"),
                  intern_all(s.locations_, im.locations, 1, "locations")})
    if (!st)
      return st.err();
  s.user_side_ = std::move(im.user_side);
  for (const auto& e : s.user_side_) {
    if (s.user_event_count_.size() <= e.user)
      s.user_event_count_.resize(std::size_t{e.user} + 1, 0);
    ++s.user_event_count_[e.user];
  }
  s.item_side_ = std::move(im.item_side);
  s.item_meta_ = std::move(im.item_meta);
  s.built_policy_ = im.built_policy;
  if (im.built_once) {
    s.built_user_events_ = static_cast<std::size_t>(im.built_user_events);
    s.built_item_events_ = static_cast<std::size_t>(im.built_item_events);
    s.user_matrix_ = build_prefix(static_cast<std::size_t>(im.built_users),
                                  static_cast<std::size_t>(im.built_item_refs),
                                  s.user_side_, s.built_user_events_, im.built_policy);
    s.item_matrix_ = build_prefix(static_cast<std::size_t>(im.built_user_refs),
                                  static_cast<std::size_t>(im.built_items), s.item_side_,
                                  s.built_item_events_, im.built_policy);
    if (im.binarized) {
      s.user_matrix_ = s.user_matrix_.binarized();
      s.item_matrix_ = s.item_matrix_.binarized();
    }
    s.built_once_ = true;
    s.binarized_ = im.binarized;
    // The recent items are what add() noted for the events after the build.
    for (std::size_t k = s.built_user_events_; k < s.user_side_.size(); ++k)
      s.note_recent(s.user_side_[k].user, s.user_side_[k].item, s.user_side_[k].value,
                    s.user_side_[k].type);
  }
  s.built_ = im.built;
  return s;
}

} // namespace shardrec::dist

namespace shardrec::dist {

bool partition_store::has_pair(std::string_view user, std::string_view item) const {
  const auto u = users_.find(user);
  const auto i = item_refs_.find(item);
  if (!u || !i)
    return false;
  if (!built_once_) // no matrix yet, and recent items are noted only after one
    return std::any_of(user_side_.begin(), user_side_.end(),
                       [&](const event& e) { return e.user == *u && e.item == *i; });
  if (*u < user_matrix_.n_users() && *i < user_matrix_.n_items()
      && user_matrix_.find(*u, *i))
    return true;
  for (const auto& r : recent_items(*u))
    if (r.item_ref == *i)
      return true;
  return false;
}

} // namespace shardrec::dist
