// shardrec::core::errc as a CAF error category, so actor replies carry the
// same codes and messages core/ returns.
#pragma once

#include <caf/error.hpp>

#include "core/error.hpp"

namespace shardrec::actors {

// Converts a core error into a caf::error (category "shardrec").
caf::error to_caf_error(const core::error& err);

// True for errc::moved and errc::fenced: the partition is moving to another
// node or has a new primary (a write to be sent again once the map names
// the new owner).
bool is_moved(const caf::error& err);
// True for errc::fenced only: the sender's epoch is older than the receiver's.
bool is_fenced(const caf::error& err);

} // namespace shardrec::actors
