#include "actors/errc.hpp"

#include <caf/atom.hpp>
#include <caf/make_message.hpp>

namespace shardrec::actors {

bool is_moved(const caf::error& err) {
  return err.category() == caf::atom("shardrec")
         && (err.code() == static_cast<std::uint8_t>(core::errc::moved)
             || err.code() == static_cast<std::uint8_t>(core::errc::fenced));
}

bool is_fenced(const caf::error& err) {
  return err.category() == caf::atom("shardrec")
         && err.code() == static_cast<std::uint8_t>(core::errc::fenced);
}

caf::error to_caf_error(const core::error& err) {
  return caf::error{static_cast<std::uint8_t>(err.code), caf::atom("shardrec"),
                    caf::make_message(err.message)};
}

} // namespace shardrec::actors
