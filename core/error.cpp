#include "core/error.hpp"

namespace shardrec::core {

const char* to_string(errc e) {
  switch (e) {
    case errc::ok: return "ok";
    case errc::io_error: return "io_error";
    case errc::parse_error: return "parse_error";
    case errc::out_of_range: return "out_of_range";
    case errc::invalid_argument: return "invalid_argument";
    case errc::unknown_id: return "unknown_id";
    case errc::bad_message: return "bad_message";
    case errc::moved: return "moved";
    case errc::fenced: return "fenced";
  }
  return "unknown";
}

} // namespace shardrec::core
