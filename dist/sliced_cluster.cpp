#include "dist/sliced_cluster.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/ease.hpp"
#include "core/ials.hpp"
#include "core/mf.hpp"

namespace shardrec::dist {

using namespace shardrec::core;

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "sliced_cluster: %s\n", what.c_str());
  std::abort();
}

const model* part(const hybrid_model& h, const std::string& name) {
  for (const auto& p : h.parts())
    if (p.name == name)
      return p.model.get();
  return nullptr;
}

} // namespace

std::vector<raw_event> raw_events_of(const dataset& ds) {
  std::vector<raw_event> out;
  out.reserve(ds.events.size());
  for (const auto& e : ds.events) {
    raw_event r;
    r.user = ds.users.external(e.user);
    r.item = ds.items.external(e.item);
    r.value = e.value;
    r.type = e.type;
    r.timestamp = e.timestamp;
    out.push_back(std::move(r));
  }
  return out;
}

namespace {

std::vector<partition_store> fed_stores(const std::vector<raw_event>& events,
                                        std::uint32_t P) {
  std::vector<partition_store> stores;
  for (std::uint32_t p = 0; p < P; ++p)
    stores.emplace_back(p, P);
  for (auto& s : stores)
    for (const auto& e : events)
      if (auto st = s.add(e); !st)
        die("event rejected: " + st.err().message);
  return stores;
}

} // namespace

std::vector<partition_store> make_stores(const std::vector<raw_event>& events,
                                         std::uint32_t P, merge_policy policy) {
  auto stores = fed_stores(events, P);
  for (auto& s : stores)
    s.build(policy);
  return stores;
}

std::vector<partition_store> make_stores(const dataset& ds, std::uint32_t P,
                                         merge_policy policy) {
  auto stores = fed_stores(raw_events_of(ds), P);
  for (auto& s : stores) {
    for (index_t i = 0; i < ds.item_meta.size(); ++i)
      s.set_item_info(ds.items.external(i), ds.item_meta[i]);
    s.build(policy);
  }
  return stores;
}

content_result run_content(const std::vector<partition_store>& stores,
                           const content_config& cfg, std::mt19937* shuffle) {
  const auto P = static_cast<std::uint32_t>(stores.size());
  auto mix = [&](auto& v) {
    if (shuffle)
      std::shuffle(v.begin(), v.end(), *shuffle);
  };
  std::vector<content_df_partial> parts;
  for (const auto& s : stores)
    parts.push_back(count_content_df(s, cfg));
  mix(parts);
  auto voc = merge_content_df(parts, P, cfg);
  if (!voc)
    die(voc.err().message);
  content_result out;
  out.voc = *voc;
  std::vector<std::vector<content_vectors_message>> inbox(P);
  for (const auto& s : stores) {
    out.item_vectors.push_back(build_item_vectors(s, out.voc, cfg));
    for (auto& m : push_item_vectors(s, out.item_vectors.back())) {
      if (m.from != s.partition())
        die("push_item_vectors: message from the wrong partition");
      inbox[m.to].push_back(std::move(m));
    }
  }
  for (std::uint32_t p = 0; p < P; ++p) {
    mix(inbox[p]);
    auto st = build_content_users(stores[p], inbox[p], cfg);
    if (!st)
      die(st.err().message);
    out.users.push_back(std::move(*st));
  }
  return out;
}

sliced_cluster slice_hybrid(const dataset& ds, const hybrid_model& h,
                            const neighbor_lists& neighbors, std::uint32_t P,
                            const blend_spec& spec, merge_policy policy,
                            std::mt19937* shuffle) {
  sliced_cluster c;
  c.stores = make_stores(ds, P, policy);
  auto cr = run_content(c.stores, content_config{}, shuffle);
  const auto* ials = dynamic_cast<const ials_model*>(part(h, "implicit-als"));
  const auto* mf = dynamic_cast<const mf_model*>(part(h, "mf"));
  const auto* ease = dynamic_cast<const ease_model*>(part(h, "ease"));
  std::shared_ptr<const ease_catalogue> cat;
  if (ease) {
    std::vector<std::vector<std::string>> lists;
    for (const auto& s : c.stores)
      lists.push_back(ease_items(s));
    auto made = make_ease_catalogue(lists, ~std::size_t{0});
    if (!made)
      die(made.err().message);
    cat = std::make_shared<const ease_catalogue>(std::move(*made));
  }
  const Eigen::Index kd = ials ? ials->item_factors().cols() : 0;
  const Eigen::Index km = mf ? mf->factors().item.cols() : 0;
  std::vector<std::vector<reverse_neighbor>> rev(ds.items.size());
  for (std::size_t j = 0; j < neighbors.size(); ++j)
    for (const auto& nb : neighbors[j])
      rev[nb.id].push_back({ds.items.external(static_cast<index_t>(j)), nb.similarity});
  for (std::uint32_t p = 0; p < P; ++p) {
    const auto& s = c.stores[p];
    partition_item_models m;
    m.ials_factors = static_cast<std::size_t>(kd);
    m.mf_factors = static_cast<std::size_t>(km);
    if (mf)
      m.mf_mu = mf->factors().mu;
    for (index_t r = 0; r < s.items().size(); ++r) {
      const auto& id = s.items().external(r);
      auto i = static_cast<Eigen::Index>(*ds.items.find(id));
      m.items.push_back(id);
      for (Eigen::Index k = 0; k < kd; ++k)
        m.ials_item.push_back(ials->item_factors()(i, k));
      for (Eigen::Index k = 0; k < km; ++k)
        m.mf_item.push_back(mf->factors().item(i, k));
      if (mf)
        m.mf_item_bias.push_back(mf->factors().item_bias[i]);
      m.knn_reverse.push_back(rev[static_cast<std::size_t>(i)]);
    }
    m.popularity = partition_popularity(s);
    m.content = cr.item_vectors[p];
    if (ease) {
      // B by external id: catalogue item pos's weight for owned item r.
      const auto owned = m.items.size();
      m.ease = cat;
      m.ease_weight.assign(cat->items.size() * owned, 0.0f);
      for (std::size_t pos = 0; pos < cat->items.size(); ++pos) {
        const auto i = static_cast<Eigen::Index>(*ds.items.find(cat->items[pos]));
        for (std::size_t r = 0; r < owned; ++r)
          m.ease_weight[pos * owned + r] =
              ease->weights()(i, static_cast<Eigen::Index>(*ds.items.find(m.items[r])));
      }
    }
    auto sc = partition_scorer::make(std::move(m), spec);
    if (!sc)
      die(sc.err().message);
    c.scorers.push_back(std::move(*sc));

    partition_user_models um;
    um.ials_factors = static_cast<std::size_t>(kd);
    um.mf_factors = static_cast<std::size_t>(km);
    for (index_t r = 0; r < s.users().size(); ++r) {
      auto u = static_cast<Eigen::Index>(*ds.users.find(s.users().external(r)));
      for (Eigen::Index k = 0; k < kd; ++k)
        um.ials_user.push_back(ials->user_factors()(u, k));
      for (Eigen::Index k = 0; k < km; ++k)
        um.mf_user.push_back(mf->factors().user(u, k));
      if (mf)
        um.mf_user_bias.push_back(mf->factors().user_bias[u]);
    }
    um.content = std::move(cr.users[p]);
    c.users.push_back(std::move(um));
  }
  return c;
}

} // namespace shardrec::dist
