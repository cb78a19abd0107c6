// Private helpers of the codec files (actors/codec*.cpp): the wire form of
// the dist structs that more than one message or file holds (sparse vectors,
// blend kinds and specs, item attributes). Decoders return errc::bad_message
// naming `where` and the field; none of them throws. No other file includes
// this header (it pulls in Cap'n Proto).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/dataset.hpp"
#include "core/error.hpp"
#include "dist/recommend.hpp"
#include "schema/events.capnp.h"
#include "schema/query.capnp.h"
#include "schema/train.capnp.h"

namespace shardrec::actors::detail {

// ---- sparse vectors: features strictly ascending, weights aligned.

void fill(wire::SparseVector::Builder b, const dist::sparse_vector& v);
core::result<dist::sparse_vector> read(wire::SparseVector::Reader r,
                                       const std::string& where);

// Rows in CSR (one length per row).
void fill(wire::SparseRows::Builder b, const std::vector<dist::sparse_vector>& rows);
core::result<std::vector<dist::sparse_vector>> read(wire::SparseRows::Reader r,
                                                    const std::string& where);

// ---- the blend

wire::BlendKind to_wire(dist::blend_kind k);
std::optional<dist::blend_kind> from_wire(wire::BlendKind k);

void fill(wire::BlendSpec::Builder b, const dist::blend_spec& s);
core::result<dist::blend_spec> read(wire::BlendSpec::Reader r, const std::string& where);

// ---- item side information (the attributes only; the caller sets `item`)

void fill(wire::ItemAttributes::Builder b, const core::item_info& info);
core::item_info read(wire::ItemAttributes::Reader r);

} // namespace shardrec::actors::detail
