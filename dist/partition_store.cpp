#include "dist/partition_store.hpp"

#include <cmath>

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
    note_recent(ev.user, ev.item, ev.value);
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
  auto i = items_.intern(item);
  if (item_meta_.size() <= i)
    item_meta_.resize(static_cast<std::size_t>(i) + 1);
  item_meta_[i] = std::move(info);
  built_ = false;
}

void partition_store::note_recent(index_t user, index_t item_ref, float value) {
  // Before the first build nothing is served: the build takes every event.
  if (!built_once_)
    return;
  // Items already in the user's row of the last build are seen already.
  if (user < user_matrix_.n_users() && user_matrix_.find(user, item_ref))
    return;
  auto& items = recent_[user];
  for (auto& r : items)
    if (r.item_ref == item_ref) {
      r.value = value;
      return;
    }
  items.push_back({item_ref, value});
}

const std::vector<partition_store::recent_item>&
partition_store::recent_items(index_t user) const {
  static const std::vector<recent_item> none;
  auto it = recent_.find(user);
  return it == recent_.end() ? none : it->second;
}

void partition_store::build(merge_policy policy) {
  recent_.clear();
  user_matrix_ =
      interaction_matrix::build(users_.size(), item_refs_.size(), user_side_, policy);
  item_matrix_ =
      interaction_matrix::build(user_refs_.size(), items_.size(), item_side_, policy);
  built_ = true;
  built_once_ = true;
  built_policy_ = policy;
}

partition_store partition_store::binarized() const {
  SHARDREC_ASSERT(built_);
  partition_store b = *this;
  b.user_matrix_ = user_matrix_.binarized();
  b.item_matrix_ = item_matrix_.binarized();
  return b;
}

} // namespace shardrec::dist
