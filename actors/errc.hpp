// shardrec::core::errc as a CAF error category, so actor replies carry the
// same codes and messages core/ returns.
#pragma once

#include <caf/error.hpp>

#include "core/error.hpp"

namespace shardrec::actors {

// Converts a core error into a caf::error (category "shardrec").
caf::error to_caf_error(const core::error& err);

// True for errc::moved: the partition is moving to another node (a write
// to be sent again once the map has flipped).
bool is_moved(const caf::error& err);

} // namespace shardrec::actors
