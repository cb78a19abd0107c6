#include "actors/codec_parts.hpp"

#include "actors/codec_util.hpp"

namespace shardrec::actors::detail {

// ---- sparse vectors

void fill(wire::SparseVector::Builder b, const dist::sparse_vector& v) {
  SHARDREC_ASSERT(v.feature.size() == v.weight.size());
  put(b.initFeature(list_size(v.feature.size())), v.feature);
  put(b.initWeight(list_size(v.weight.size())), v.weight);
}

core::result<dist::sparse_vector> read(wire::SparseVector::Reader r,
                                       const std::string& where) {
  dist::sparse_vector v;
  v.feature = get<std::uint32_t>(r.getFeature());
  v.weight = get<float>(r.getWeight());
  if (v.weight.size() != v.feature.size())
    return misaligned(where, "weight", v.weight.size(), "feature", v.feature.size());
  if (auto at = first_unsorted(v.feature); at != v.feature.size())
    return not_ascending(where, "feature", at);
  return v;
}

void fill(wire::SparseRows::Builder b, const std::vector<dist::sparse_vector>& rows) {
  std::size_t total = 0;
  auto length = b.initLength(list_size(rows.size()));
  for (unsigned r = 0; r < rows.size(); ++r) {
    SHARDREC_ASSERT(rows[r].feature.size() == rows[r].weight.size());
    length.set(r, list_size(rows[r].feature.size()));
    total += rows[r].feature.size();
  }
  auto feature = b.initFeature(list_size(total));
  auto weight = b.initWeight(list_size(total));
  unsigned k = 0;
  for (const auto& v : rows) {
    for (std::size_t j = 0; j < v.feature.size(); ++j, ++k) {
      feature.set(k, v.feature[j]);
      weight.set(k, v.weight[j]);
    }
  }
}

core::result<std::vector<dist::sparse_vector>> read(wire::SparseRows::Reader r,
                                                    const std::string& where) {
  auto length = r.getLength();
  auto feature = r.getFeature();
  auto weight = r.getWeight();
  if (auto err =
          csr_problem(length, feature.size(), weight.size(), where, "feature", "weight"))
    return *err;
  std::vector<dist::sparse_vector> rows(length.size());
  unsigned k = 0;
  for (unsigned i = 0; i < length.size(); ++i) {
    auto& v = rows[i];
    v.feature.reserve(length[i]);
    v.weight.reserve(length[i]);
    for (unsigned j = 0; j < length[i]; ++j, ++k) {
      v.feature.push_back(feature[k]);
      v.weight.push_back(weight[k]);
    }
    if (auto at = first_unsorted(v.feature); at != v.feature.size())
      return not_ascending(where + " row " + std::to_string(i), "feature", at);
  }
  return rows;
}

// ---- the blend: kinds mapped one by one, so reordering either side cannot
// shift them.

wire::BlendKind to_wire(dist::blend_kind k) {
  switch (k) {
    case dist::blend_kind::implicit_als: return wire::BlendKind::IMPLICIT_ALS;
    case dist::blend_kind::itemknn: return wire::BlendKind::ITEMKNN;
    case dist::blend_kind::content: return wire::BlendKind::CONTENT;
    case dist::blend_kind::popular: return wire::BlendKind::POPULAR;
    case dist::blend_kind::mf: return wire::BlendKind::MF;
    case dist::blend_kind::ease: return wire::BlendKind::EASE;
  }
  unknown_enumerant();
}

std::optional<dist::blend_kind> from_wire(wire::BlendKind k) {
  switch (k) {
    case wire::BlendKind::IMPLICIT_ALS: return dist::blend_kind::implicit_als;
    case wire::BlendKind::ITEMKNN: return dist::blend_kind::itemknn;
    case wire::BlendKind::CONTENT: return dist::blend_kind::content;
    case wire::BlendKind::POPULAR: return dist::blend_kind::popular;
    case wire::BlendKind::MF: return dist::blend_kind::mf;
    case wire::BlendKind::EASE: return dist::blend_kind::ease;
  }
  return std::nullopt;
}

void fill(wire::BlendSpec::Builder b, const dist::blend_spec& s) {
  auto list = b.initComponents(list_size(s.size()));
  for (unsigned i = 0; i < s.size(); ++i) {
    list[i].setName(s[i].name);
    list[i].setKind(to_wire(s[i].kind));
    list[i].setWeight(s[i].weight);
  }
}

core::result<dist::blend_spec> read(wire::BlendSpec::Reader r, const std::string& where) {
  dist::blend_spec s;
  for (auto c : r.getComponents()) {
    auto kind = from_wire(c.getKind());
    if (!kind)
      return unknown_enum(where + " component " + std::to_string(s.size()), "kind",
                          static_cast<std::uint16_t>(c.getKind()));
    s.push_back({text(c.getName()), *kind, c.getWeight()});
  }
  return s;
}

// ---- item side information

void fill(wire::ItemAttributes::Builder b, const core::item_info& info) {
  b.setTitle(info.title);
  b.setText(info.text);
  put(b.initGenres(list_size(info.genres.size())), info.genres);
  put(b.initTags(list_size(info.tags.size())), info.tags);
}

core::item_info read(wire::ItemAttributes::Reader r) {
  core::item_info info;
  info.title = text(r.getTitle());
  info.text = text(r.getText());
  info.genres = get_strings(r.getGenres());
  info.tags = get_strings(r.getTags());
  return info;
}

} // namespace shardrec::actors::detail
