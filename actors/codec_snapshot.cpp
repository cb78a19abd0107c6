#include "actors/codec_snapshot.hpp"

#include <algorithm>

#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <kj/io.h>

#include "actors/codec_parts.hpp"
#include "actors/codec_util.hpp"
#include "schema/snapshot.capnp.h"

namespace shardrec::actors {

namespace {

using detail::csr_problem;
using detail::fill;
using detail::get;
using detail::get_strings;
using detail::list_size;
using detail::misaligned;
using detail::out_of_dictionary;
using detail::put;
using detail::read;
using detail::text;
using detail::unknown_enum;
using detail::unknown_enumerant;

core::error bad(const std::string& what) {
  return core::make_error(core::errc::bad_message, "bad snapshot: " + what);
}

// Event types travel as their core values (both enums are numbered alike).
constexpr bool same_event_type(core::event_type c, wire::EventType w) {
  return static_cast<int>(c) == static_cast<int>(w);
}
static_assert(same_event_type(core::event_type::view, wire::EventType::VIEW)
              && same_event_type(core::event_type::click, wire::EventType::CLICK)
              && same_event_type(core::event_type::cart, wire::EventType::CART)
              && same_event_type(core::event_type::purchase, wire::EventType::PURCHASE)
              && same_event_type(core::event_type::rating, wire::EventType::RATING)
              && same_event_type(core::event_type::cancel, wire::EventType::CANCEL)
              && core::event_type_count == 6);

wire::MergePolicy to_wire(core::merge_policy p) {
  switch (p) {
    case core::merge_policy::last: return wire::MergePolicy::LAST;
    case core::merge_policy::sum: return wire::MergePolicy::SUM;
    case core::merge_policy::max: return wire::MergePolicy::MAX;
    case core::merge_policy::confidence: return wire::MergePolicy::CONFIDENCE;
  }
  unknown_enumerant();
}

std::optional<core::merge_policy> from_wire(wire::MergePolicy p) {
  switch (p) {
    case wire::MergePolicy::LAST: return core::merge_policy::last;
    case wire::MergePolicy::SUM: return core::merge_policy::sum;
    case wire::MergePolicy::MAX: return core::merge_policy::max;
    case wire::MergePolicy::CONFIDENCE: return core::merge_policy::confidence;
  }
  return std::nullopt;
}

// A list of structs costs at least one word an element when it was written
// by a builder; a longer one is an amplification (zero-sized elements) that
// the unlimited traversal of a snapshot would not stop.
std::optional<core::error> too_long(std::size_t elements, std::size_t message_words,
                                    const std::string& where, const char* field) {
  if (elements <= message_words)
    return std::nullopt;
  return bad(where + ": field '" + field + "' claims " + std::to_string(elements)
             + " entries in a message of " + std::to_string(message_words) + " words");
}

// ---- events

void fill(wire::EventColumns::Builder b, const std::vector<core::event>& events) {
  const auto n = list_size(events.size());
  auto user = b.initUser(n);
  auto item = b.initItem(n);
  auto value = b.initValue(n);
  auto type = b.initType(n);
  auto device = b.initDevice(n);
  auto location = b.initLocation(n);
  auto timestamp = b.initTimestamp(n);
  for (unsigned k = 0; k < n; ++k) {
    const auto& e = events[k];
    user.set(k, e.user);
    item.set(k, e.item);
    value.set(k, e.value);
    type.set(k, static_cast<wire::EventType>(e.type));
    device.set(k, e.device);
    location.set(k, e.location);
    timestamp.set(k, e.timestamp);
  }
}

core::result<std::vector<core::event>> read(wire::EventColumns::Reader r,
                                            const std::string& where) {
  auto user = r.getUser();
  auto item = r.getItem();
  auto value = r.getValue();
  auto type = r.getType();
  auto device = r.getDevice();
  auto location = r.getLocation();
  auto timestamp = r.getTimestamp();
  const std::size_t n = user.size();
  const std::pair<const char*, std::size_t> columns[] = {
      {"item", item.size()},         {"value", value.size()},
      {"type", type.size()},         {"device", device.size()},
      {"location", location.size()}, {"timestamp", timestamp.size()}};
  for (const auto& [field, size] : columns)
    if (size != n)
      return misaligned(where, field, size, "user", n);
  std::vector<core::event> events(n);
  for (unsigned k = 0; k < n; ++k) {
    auto& e = events[k];
    const auto t = static_cast<std::uint16_t>(type[k]);
    if (t >= core::event_type_count)
      return unknown_enum(where + " event " + std::to_string(k), "type", t);
    e.user = user[k];
    e.item = item[k];
    e.value = value[k];
    e.type = static_cast<core::event_type>(t);
    e.device = device[k];
    e.location = location[k];
    e.timestamp = timestamp[k];
  }
  return events;
}

// ---- the store

void fill(wire::StoreImage::Builder b, const dist::store_image& s) {
  b.setPartition(s.partition);
  b.setPartitions(s.partitions);
  put(b.initUsers(list_size(s.users.size())), s.users);
  put(b.initItemRefs(list_size(s.item_refs.size())), s.item_refs);
  put(b.initItems(list_size(s.items.size())), s.items);
  put(b.initUserRefs(list_size(s.user_refs.size())), s.user_refs);
  put(b.initDevices(list_size(s.devices.size())), s.devices);
  put(b.initLocations(list_size(s.locations.size())), s.locations);
  fill(b.initUserSide(), s.user_side);
  fill(b.initItemSide(), s.item_side);
  auto meta = b.initItemMeta(list_size(s.item_meta.size()));
  for (unsigned i = 0; i < s.item_meta.size(); ++i)
    fill(meta[i], s.item_meta[i]);
  b.setBuilt(s.built);
  b.setBuiltOnce(s.built_once);
  b.setBuiltPolicy(to_wire(s.built_policy));
  b.setBinarized(s.binarized);
  b.setBuiltUsers(s.built_users);
  b.setBuiltItemRefs(s.built_item_refs);
  b.setBuiltUserEvents(s.built_user_events);
  b.setBuiltUserRefs(s.built_user_refs);
  b.setBuiltItems(s.built_items);
  b.setBuiltItemEvents(s.built_item_events);
}

core::result<dist::store_image> read(wire::StoreImage::Reader r, std::size_t words) {
  const std::string where = "store";
  dist::store_image s;
  s.partition = r.getPartition();
  s.partitions = r.getPartitions();
  s.users = get_strings(r.getUsers());
  s.item_refs = get_strings(r.getItemRefs());
  s.items = get_strings(r.getItems());
  s.user_refs = get_strings(r.getUserRefs());
  s.devices = get_strings(r.getDevices());
  s.locations = get_strings(r.getLocations());
  auto user_side = read(r.getUserSide(), where + " user_side");
  if (!user_side)
    return user_side.err();
  s.user_side = std::move(*user_side);
  auto item_side = read(r.getItemSide(), where + " item_side");
  if (!item_side)
    return item_side.err();
  s.item_side = std::move(*item_side);
  auto meta = r.getItemMeta();
  if (auto err = too_long(meta.size(), words, where, "item_meta"))
    return *err;
  s.item_meta.reserve(meta.size());
  for (auto m : meta)
    s.item_meta.push_back(read(m));
  s.built = r.getBuilt();
  s.built_once = r.getBuiltOnce();
  auto policy = from_wire(r.getBuiltPolicy());
  if (!policy)
    return unknown_enum(where, "built_policy",
                        static_cast<std::uint16_t>(r.getBuiltPolicy()));
  s.built_policy = *policy;
  s.binarized = r.getBinarized();
  s.built_users = r.getBuiltUsers();
  s.built_item_refs = r.getBuiltItemRefs();
  s.built_user_events = r.getBuiltUserEvents();
  s.built_user_refs = r.getBuiltUserRefs();
  s.built_items = r.getBuiltItems();
  s.built_item_events = r.getBuiltItemEvents();
  return s;
}

// ---- (id, weight) lists over a dictionary

// rows[r] has the entries entries(rows[r]); key(e) is an entry's id and
// weight(e) its weight.
template <class Rows, class Entries, class Key, class Weight>
void fill_lists(wire::IdWeightLists::Builder b, const Rows& rows, Entries entries,
                Key key, Weight weight) {
  std::size_t total = 0;
  auto length = b.initLength(list_size(rows.size()));
  for (unsigned r = 0; r < rows.size(); ++r) {
    length.set(r, list_size(entries(rows[r]).size()));
    total += entries(rows[r]).size();
  }
  auto id = b.initId(list_size(total));
  auto w = b.initWeight(list_size(total));
  std::unordered_map<std::string_view, std::uint32_t> index;
  std::vector<std::string_view> dictionary;
  unsigned k = 0;
  for (const auto& row : rows)
    for (const auto& e : entries(row)) {
      const std::string_view name = key(e);
      auto [it, fresh] =
          index.emplace(name, static_cast<std::uint32_t>(dictionary.size()));
      if (fresh)
        dictionary.push_back(name);
      id.set(k, it->second);
      w.set(k, weight(e));
      ++k;
    }
  auto dict = b.initDictionary(list_size(dictionary.size()));
  for (unsigned i = 0; i < dictionary.size(); ++i)
    dict.set(i, capnp::Text::Reader(dictionary[i].data(), dictionary[i].size()));
}

// The lists as rows of E{id, weight}.
template <class E>
core::result<std::vector<std::vector<E>>> read_lists(wire::IdWeightLists::Reader r,
                                                     const std::string& where) {
  auto dictionary = get_strings(r.getDictionary());
  auto length = r.getLength();
  auto id = r.getId();
  auto weight = r.getWeight();
  if (auto err = csr_problem(length, id.size(), weight.size(), where, "id", "weight"))
    return *err;
  std::vector<std::vector<E>> rows(length.size());
  unsigned k = 0;
  for (unsigned i = 0; i < length.size(); ++i) {
    rows[i].reserve(length[i]);
    for (unsigned j = 0; j < length[i]; ++j, ++k) {
      if (id[k] >= dictionary.size())
        return out_of_dictionary(where, "id", k, id[k], dictionary.size());
      rows[i].push_back(E{dictionary[id[k]], weight[k]});
    }
  }
  return rows;
}

// ---- the served model

// 1 + the largest feature of the vectors (0: none).
std::uint32_t feature_bound(const std::vector<dist::sparse_vector>& vectors) {
  std::uint32_t bound = 0;
  for (const auto& v : vectors)
    if (!v.empty()) {
      SHARDREC_ASSERT(v.feature.back() < std::numeric_limits<std::uint32_t>::max());
      bound = std::max(bound, v.feature.back() + 1);
    }
  return bound;
}

void fill(wire::ItemModels::Builder b, const dist::partition_item_models& m) {
  put(b.initItems(list_size(m.items.size())), m.items);
  b.setIalsFactors(m.ials_factors);
  put(b.initIalsItem(list_size(m.ials_item.size())), m.ials_item);
  b.setMfFactors(m.mf_factors);
  b.setMfMu(m.mf_mu);
  put(b.initMfItem(list_size(m.mf_item.size())), m.mf_item);
  put(b.initMfItemBias(list_size(m.mf_item_bias.size())), m.mf_item_bias);
  fill_lists(
      b.initKnnReverse(), m.knn_reverse,
      [](const auto& list) -> const auto& { return list; },
      [](const dist::reverse_neighbor& e) -> const std::string& { return e.item; },
      [](const dist::reverse_neighbor& e) { return e.similarity; });
  put(b.initPopularity(list_size(m.popularity.size())), m.popularity);
  fill(b.initContent(), m.content);
  if (m.ease) {
    put(b.initEaseItems(list_size(m.ease->items.size())), m.ease->items);
    put(b.initEaseWeight(list_size(m.ease_weight.size())), m.ease_weight);
  }
}

core::result<dist::partition_item_models> read(wire::ItemModels::Reader r,
                                               std::uint32_t content_features) {
  const std::string where = "model items";
  dist::partition_item_models m;
  m.items = get_strings(r.getItems());
  m.ials_factors = r.getIalsFactors();
  m.ials_item = get<float>(r.getIalsItem());
  m.mf_factors = r.getMfFactors();
  m.mf_mu = r.getMfMu();
  m.mf_item = get<float>(r.getMfItem());
  m.mf_item_bias = get<float>(r.getMfItemBias());
  auto reverse =
      read_lists<dist::reverse_neighbor>(r.getKnnReverse(), where + " knn_reverse");
  if (!reverse)
    return reverse.err();
  m.knn_reverse = std::move(*reverse);
  m.popularity = get<float>(r.getPopularity());
  auto content = read(r.getContent(), where + " content");
  if (!content)
    return content.err();
  m.content = std::move(*content);
  // Checked before the bound is computed, so that it cannot wrap.
  for (std::size_t i = 0; i < m.content.size(); ++i)
    if (!m.content[i].empty() && m.content[i].feature.back() >= content_features)
      return bad(where + " content row " + std::to_string(i) + ": feature "
                 + std::to_string(m.content[i].feature.back())
                 + " is not below content_features " + std::to_string(content_features));
  if (auto bound = feature_bound(m.content); bound != content_features)
    return bad(where + ": content_features is " + std::to_string(content_features)
               + " but the largest feature + 1 is " + std::to_string(bound));
  if (r.hasEaseItems() && r.getEaseItems().size() > 0) {
    auto items = get_strings(r.getEaseItems());
    auto cat = dist::make_ease_catalogue({items}, ~std::size_t{0});
    if (!cat)
      return bad(where + " ease_items: " + cat.err().message);
    if (cat->items != items)
      return bad(where + " ease_items: not in catalogue (stable_hash, id) order");
    m.ease = std::make_shared<const dist::ease_catalogue>(std::move(*cat));
    m.ease_weight = get<float>(r.getEaseWeight());
    if (m.ease_weight.size() != items.size() * m.items.size())
      return bad(where + " ease_weight: " + std::to_string(m.ease_weight.size())
                 + " values for " + std::to_string(items.size()) + " x "
                 + std::to_string(m.items.size()));
  }
  return m;
}

void fill(wire::UserModels::Builder b, const dist::partition_user_models& m) {
  b.setIalsFactors(m.ials_factors);
  put(b.initIalsUser(list_size(m.ials_user.size())), m.ials_user);
  b.setMfFactors(m.mf_factors);
  put(b.initMfUser(list_size(m.mf_user.size())), m.mf_user);
  put(b.initMfUserBias(list_size(m.mf_user_bias.size())), m.mf_user_bias);
  fill(b.initContentProfiles(), m.content.profiles);
  fill(b.initContentRefVectors(), m.content.ref_vectors);
  if (const auto* f = m.ials_fold.get()) {
    auto fb = b.initIalsFold();
    fb.setFactors(static_cast<std::uint32_t>(f->cfg.factors));
    fb.setReg(f->cfg.reg);
    fb.setAlpha(f->cfg.alpha);
    fb.setRegExponent(f->cfg.reg_exponent);
    fb.setCgSteps(f->cfg.cg_steps);
    fb.setExactSolve(f->cfg.exact_solve);
    fb.setBinary(f->cfg.binary);
    fb.setNItems(f->n_items);
    auto items = fb.initItems(list_size(static_cast<std::size_t>(f->items.size())));
    for (unsigned i = 0; i < items.size(); ++i)
      items.set(i, f->items.data()[i]);
    put(fb.initRefRow(list_size(f->ref_row.size())), f->ref_row);
    auto gram = fb.initGram(list_size(static_cast<std::size_t>(f->gram.size())));
    for (unsigned i = 0; i < gram.size(); ++i)
      gram.set(i, f->gram.data()[i]);
    fb.setNUsers(f->n_users);
    auto ug = fb.initUserGram(list_size(static_cast<std::size_t>(f->user_gram.size())));
    for (unsigned i = 0; i < ug.size(); ++i)
      ug.set(i, f->user_gram.data()[i]);
  }
  if (const auto* v = m.content.vocabulary.get()) {
    auto vb = b.initContentVocabulary();
    vb.setNDocuments(v->n_documents);
    auto names = vb.initFeatures(list_size(v->features.size()));
    for (unsigned i = 0; i < names.size(); ++i)
      names.set(i, v->features[i]);
    put(vb.initDf(list_size(v->df.size())), v->df);
    put(vb.initIdf(list_size(v->idf.size())), v->idf);
  }
  if (const auto* f = m.mf_fold.get()) {
    auto fb = b.initMfFold();
    fb.setFactors(static_cast<std::uint32_t>(f->cfg.factors));
    fb.setReg(f->cfg.reg);
    fb.setMu(f->mu);
    auto items = fb.initItems(list_size(static_cast<std::size_t>(f->items.size())));
    for (unsigned i = 0; i < items.size(); ++i)
      items.set(i, f->items.data()[i]);
    put(fb.initRefRow(list_size(f->ref_row.size())), f->ref_row);
  }
  {
    std::vector<core::index_t> users;
    for (const auto& [u, row] : m.mf_folded)
      users.push_back(u);
    std::sort(users.begin(), users.end());
    auto rows = b.initMfFolded(list_size(users.size()));
    for (unsigned i = 0; i < users.size(); ++i) {
      const auto& row = m.mf_folded.at(users[i]);
      rows[i].setUser(users[i]);
      auto values = rows[i].initFactors(list_size(row.factors.size() + 1));
      for (unsigned c = 0; c < row.factors.size(); ++c)
        values.set(c, row.factors[c]);
      values.set(static_cast<unsigned>(row.factors.size()), row.bias);
    }
  }
  // In user order, so that equal models encode to equal bytes.
  std::vector<core::index_t> folded;
  for (const auto& [u, row] : m.ials_folded)
    folded.push_back(u);
  std::sort(folded.begin(), folded.end());
  auto rows = b.initIalsFolded(list_size(folded.size()));
  for (unsigned i = 0; i < folded.size(); ++i) {
    rows[i].setUser(folded[i]);
    const auto& row = m.ials_folded.at(folded[i]);
    put(rows[i].initFactors(list_size(row.size())), row);
  }
}

core::result<std::shared_ptr<const dist::mf_fold_in_data>> read(wire::MfFoldIn::Reader r,
                                                                std::size_t mf_factors) {
  const std::string where = "model users mf_fold";
  auto d = std::make_shared<dist::mf_fold_in_data>();
  const std::size_t k = r.getFactors();
  if (k == 0 || k != mf_factors)
    return bad(where + ": factors " + std::to_string(k) + " but the model has "
               + std::to_string(mf_factors));
  d->cfg.factors = k;
  d->cfg.reg = r.getReg();
  d->cfg.solver = core::mf_solver::als;
  d->mu = r.getMu();
  auto items = get<double>(r.getItems());
  if (items.size() % (k + 1) != 0)
    return bad(where + ": " + std::to_string(items.size()) + " item values for rows of "
               + std::to_string(k + 1));
  const auto rows = items.size() / (k + 1);
  d->items = Eigen::Map<const core::mf_rows>(
      items.data(), static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(k + 1));
  d->ref_row = get<core::index_t>(r.getRefRow());
  for (auto row : d->ref_row)
    if (row != ~core::index_t{0} && row >= rows)
      return bad(where + ": ref row " + std::to_string(row) + " of "
                 + std::to_string(rows));
  return std::shared_ptr<const dist::mf_fold_in_data>(std::move(d));
}

core::result<std::shared_ptr<const dist::ials_fold_in_data>>
read(wire::IalsFoldIn::Reader r, std::size_t ials_factors) {
  const std::string where = "model users ials_fold";
  auto d = std::make_shared<dist::ials_fold_in_data>();
  const std::size_t k = r.getFactors();
  if (k == 0 || k != ials_factors)
    return bad(where + ": factors " + std::to_string(k) + " but the model has "
               + std::to_string(ials_factors));
  d->cfg.factors = k;
  d->cfg.reg = r.getReg();
  d->cfg.alpha = r.getAlpha();
  d->cfg.reg_exponent = r.getRegExponent();
  d->cfg.cg_steps = r.getCgSteps();
  d->cfg.exact_solve = r.getExactSolve();
  d->cfg.binary = r.getBinary();
  d->n_items = r.getNItems();
  if (auto st = core::validate(d->cfg); !st)
    return bad(where + ": " + st.err().message);
  auto items = get<float>(r.getItems());
  auto gram = get<float>(r.getGram());
  if (items.size() % k != 0 || gram.size() != k * k)
    return bad(where + ": " + std::to_string(items.size()) + " item values and "
               + std::to_string(gram.size()) + " Gram values for " + std::to_string(k)
               + " factors");
  const auto rows = items.size() / k;
  d->items = Eigen::Map<const core::ials_matrix>(
      items.data(), static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(k));
  d->gram = Eigen::Map<const Eigen::MatrixXf>(gram.data(), static_cast<Eigen::Index>(k),
                                              static_cast<Eigen::Index>(k));
  d->ref_row = get<core::index_t>(r.getRefRow());
  for (auto row : d->ref_row)
    if (row != ~core::index_t{0} && row >= rows)
      return bad(where + ": ref row " + std::to_string(row) + " of "
                 + std::to_string(rows));
  d->n_users = r.getNUsers();
  auto user_gram = get<float>(r.getUserGram());
  if (!user_gram.empty() && user_gram.size() != k * k)
    return bad(where + ": " + std::to_string(user_gram.size()) + " user Gram values for "
               + std::to_string(k) + " factors");
  if (!user_gram.empty())
    d->user_gram = Eigen::Map<const Eigen::MatrixXf>(
        user_gram.data(), static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(k));
  return std::shared_ptr<const dist::ials_fold_in_data>(std::move(d));
}

core::result<dist::partition_user_models> read(wire::UserModels::Reader r) {
  const std::string where = "model users";
  dist::partition_user_models m;
  m.ials_factors = r.getIalsFactors();
  m.ials_user = get<float>(r.getIalsUser());
  m.mf_factors = r.getMfFactors();
  m.mf_user = get<float>(r.getMfUser());
  m.mf_user_bias = get<float>(r.getMfUserBias());
  auto profiles = read(r.getContentProfiles(), where + " content_profiles");
  if (!profiles)
    return profiles.err();
  m.content.profiles = std::move(*profiles);
  auto refs = read(r.getContentRefVectors(), where + " content_ref_vectors");
  if (!refs)
    return refs.err();
  m.content.ref_vectors = std::move(*refs);
  if (r.hasContentVocabulary()) {
    auto v = r.getContentVocabulary();
    auto voc = std::make_shared<dist::content_vocabulary>();
    voc->n_documents = v.getNDocuments();
    for (auto name : v.getFeatures())
      voc->features.emplace_back(name.cStr(), name.size());
    voc->df = get<std::uint32_t>(v.getDf());
    voc->idf = get<float>(v.getIdf());
    if (voc->df.size() != voc->features.size() || voc->idf.size() != voc->features.size()
        || !std::is_sorted(voc->features.begin(), voc->features.end()))
      return bad(where + " content_vocabulary: " + std::to_string(voc->features.size())
                 + " features (ascending), " + std::to_string(voc->df.size()) + " df and "
                 + std::to_string(voc->idf.size()) + " idf values");
    m.content.vocabulary = std::move(voc);
  }
  if (r.hasIalsFold()) {
    auto fold = read(r.getIalsFold(), m.ials_factors);
    if (!fold)
      return fold.err();
    m.ials_fold = std::move(*fold);
  }
  if (r.hasMfFold()) {
    auto fold = read(r.getMfFold(), m.mf_factors);
    if (!fold)
      return fold.err();
    m.mf_fold = std::move(*fold);
  }
  for (auto row : r.getMfFolded()) {
    auto values = get<float>(row.getFactors());
    if (values.size() != m.mf_factors + 1)
      return bad(where + ": folded MF row of user " + std::to_string(row.getUser())
                 + " has " + std::to_string(values.size()) + " values");
    dist::mf_folded_row out;
    out.bias = values.back();
    values.pop_back();
    out.factors = std::move(values);
    m.mf_folded[row.getUser()] = std::move(out);
  }
  for (auto row : r.getIalsFolded()) {
    auto factors = get<float>(row.getFactors());
    if (factors.size() != m.ials_factors)
      return bad(where + ": folded row of user " + std::to_string(row.getUser()) + " has "
                 + std::to_string(factors.size()) + " values");
    m.ials_folded[row.getUser()] = std::move(factors);
  }
  return m;
}

void fill(wire::NeighborLists::Builder b, const std::vector<dist::entity_neighbors>& n) {
  auto entities = b.initEntities(list_size(n.size()));
  for (unsigned i = 0; i < n.size(); ++i)
    entities.set(i, n[i].id);
  fill_lists(
      b.initLists(), n,
      [](const dist::entity_neighbors& e) -> const auto& { return e.neighbors; },
      [](const dist::external_neighbor& e) -> const std::string& { return e.id; },
      [](const dist::external_neighbor& e) { return e.similarity; });
}

core::result<std::vector<dist::entity_neighbors>> read(wire::NeighborLists::Reader r) {
  const std::string where = "model neighbors";
  auto entities = get_strings(r.getEntities());
  auto lists = read_lists<dist::external_neighbor>(r.getLists(), where + " lists");
  if (!lists)
    return lists.err();
  if (lists->size() != entities.size())
    return misaligned(where, "lists", lists->size(), "entities", entities.size());
  std::vector<dist::entity_neighbors> out(entities.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i].id = std::move(entities[i]);
    out[i].neighbors = std::move((*lists)[i]);
  }
  return out;
}

void fill(wire::ServedModel::Builder b, const served_model_image& m) {
  fill(b.initItems(), m.items);
  fill(b.initSpec(), m.spec);
  fill(b.initUsers(), m.users);
  if (m.neighbors)
    fill(b.initNeighbors(), *m.neighbors);
  b.setContentFeatures(feature_bound(m.items.content));
}

core::result<served_model_image> read(wire::ServedModel::Reader r, std::size_t words) {
  served_model_image m;
  auto items = read(r.getItems(), r.getContentFeatures());
  if (!items)
    return items.err();
  m.items = std::move(*items);
  auto components = r.getSpec().getComponents();
  if (auto err = too_long(components.size(), words, "model spec", "components"))
    return *err;
  auto spec = read(r.getSpec(), "model spec");
  if (!spec)
    return spec.err();
  m.spec = std::move(*spec);
  auto users = read(r.getUsers());
  if (!users)
    return users.err();
  m.users = std::move(*users);
  if (r.hasNeighbors()) {
    auto neighbors = read(r.getNeighbors());
    if (!neighbors)
      return neighbors.err();
    m.neighbors = std::move(*neighbors);
  }
  return m;
}

core::result<partition_snapshot> read(wire::PartitionSnapshot::Reader r,
                                      std::size_t words) {
  if (r.getMagic() != wire::SNAPSHOT_MAGIC)
    return bad("wrong magic " + std::to_string(r.getMagic()) + ", expected "
               + std::to_string(wire::SNAPSHOT_MAGIC) + " (not a partition snapshot)");
  partition_snapshot s;
  s.log_seq = r.getLogSeq();
  s.model_version = r.getModelVersion();
  s.ratings_only = r.getRatingsOnly();
  s.scale = {r.getScaleMin(), r.getScaleMax()};
  const auto epochs = r.getEpochs();
  const auto starts = r.getEpochStarts();
  if (epochs.size() != starts.size())
    return bad("fields 'epochs' and 'epochStarts' have " + std::to_string(epochs.size())
               + " and " + std::to_string(starts.size()) + " entries");
  for (std::uint32_t k = 0; k < epochs.size(); ++k) {
    if (k > 0 && (epochs[k] <= epochs[k - 1] || starts[k] <= starts[k - 1]))
      return bad("field 'epochs': entry " + std::to_string(k) + " does not increase");
    s.epochs.push_back(epochs[k]);
    s.epoch_starts.push_back(starts[k]);
  }
  if (!r.hasStore())
    return bad("field 'store' is missing");
  auto store = read(r.getStore(), words);
  if (!store)
    return store.err();
  s.store = std::move(*store);
  if (r.hasModel()) {
    auto model = read(r.getModel(), words);
    if (!model)
      return model.err();
    s.model = std::move(*model);
  }
  return s;
}

} // namespace

std::string encode_snapshot(const partition_snapshot& s) {
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<wire::PartitionSnapshot>();
  root.setMagic(wire::SNAPSHOT_MAGIC);
  root.setLogSeq(s.log_seq);
  root.setModelVersion(s.model_version);
  root.setRatingsOnly(s.ratings_only);
  root.setScaleMin(s.scale.min);
  root.setScaleMax(s.scale.max);
  fill(root.initStore(), s.store);
  if (!s.epochs.empty()) {
    auto epochs = root.initEpochs(static_cast<unsigned>(s.epochs.size()));
    auto starts = root.initEpochStarts(static_cast<unsigned>(s.epoch_starts.size()));
    for (std::size_t k = 0; k < s.epochs.size(); ++k) {
      epochs.set(static_cast<unsigned>(k), s.epochs[k]);
      starts.set(static_cast<unsigned>(k), s.epoch_starts[k]);
    }
  }
  if (s.model)
    fill(root.initModel(), *s.model);
  // Written straight into the string: a snapshot can be large.
  std::string bytes(capnp::computeSerializedSizeInWords(mb) * sizeof(capnp::word), '\0');
  kj::ArrayOutputStream out(
      kj::arrayPtr(reinterpret_cast<kj::byte*>(bytes.data()), bytes.size()));
  capnp::writeMessage(out, mb);
  SHARDREC_ASSERT(out.getArray().size() == bytes.size());
  return bytes;
}

core::result<partition_snapshot> decode_snapshot(const void* data, std::size_t size) {
  if (size == 0)
    return bad("empty");
  if (size % sizeof(capnp::word) != 0)
    return bad("size " + std::to_string(size) + " is not a multiple of 8 bytes");
  const std::size_t n_words = size / sizeof(capnp::word);
  kj::Array<capnp::word> copy;
  kj::ArrayPtr<const capnp::word> words;
  try {
    if (reinterpret_cast<std::uintptr_t>(data) % alignof(capnp::word) == 0) {
      words =
          kj::ArrayPtr<const capnp::word>(static_cast<const capnp::word*>(data), n_words);
    } else {
      copy = kj::heapArray<capnp::word>(n_words);
      std::memcpy(copy.begin(), data, size);
      words = copy;
    }
    // A snapshot can hold hundreds of MB: no traversal limit. Lists of
    // structs are checked against the message size instead (too_long).
    capnp::ReaderOptions opt;
    opt.traversalLimitInWords = std::numeric_limits<std::uint64_t>::max();
    capnp::FlatArrayMessageReader reader(words, opt);
    if (reader.getEnd() != words.end())
      return bad(std::to_string((words.end() - reader.getEnd()) * sizeof(capnp::word))
                 + " bytes after the message");
    auto s = read(reader.getRoot<wire::PartitionSnapshot>(), n_words);
    if (!s.ok()) {
      // The shared decoders say "bad frame: "; this is a snapshot.
      auto err = s.err();
      const std::string frame_prefix = "bad frame: ";
      if (err.message.compare(0, frame_prefix.size(), frame_prefix) == 0)
        err.message = "bad snapshot: " + err.message.substr(frame_prefix.size());
      return err;
    }
    return s;
  } catch (const kj::Exception& e) {
    return bad(e.getDescription().cStr());
  } catch (const std::exception& e) {
    return bad(std::string("cannot be read: ") + e.what());
  }
}

core::result<dist::served_models> make_served(const served_model_image& m) {
  return make_served(served_model_image(m));
}

core::result<dist::served_models> make_served(served_model_image&& m) {
  auto scorer = dist::partition_scorer::make(std::move(m.items), std::move(m.spec));
  if (!scorer)
    return scorer.err();
  dist::served_models out;
  out.scorer = std::make_shared<const dist::partition_scorer>(std::move(*scorer));
  out.users = std::move(m.users);
  if (m.neighbors)
    out.neighbors = std::make_shared<const dist::neighbor_lists>(std::move(*m.neighbors));
  return out;
}

served_model_image image_of(const dist::served_models& m) {
  SHARDREC_ASSERT(m.scorer);
  served_model_image out;
  out.items = m.scorer->models();
  out.spec = m.scorer->spec();
  out.users = m.users;
  if (m.neighbors)
    out.neighbors = m.neighbors->lists();
  return out;
}

} // namespace shardrec::actors
