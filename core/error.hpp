// Error values for failures a caller can cause (bad input, unknown id, bad
// option). Broken internal invariants use SHARDREC_ASSERT instead.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace shardrec::core {

// One enum for every recoverable failure; actors/ maps it onto caf::error.
enum class errc {
  ok = 0,
  io_error,         // file missing or unreadable
  parse_error,      // malformed line or field; message names file:line and field
  out_of_range,     // value outside the declared scale or an id out of bounds
  invalid_argument, // option or parameter that makes no sense
  unknown_id,       // user or item never seen
  bad_message,      // a frame from a peer that does not decode
  moved,            // the partition is moving to another node: retry (routers do)
  fenced,           // of an older epoch: the sender lost the partition (retry on
                    // the new primary, as for moved)
};

const char* to_string(errc e);

struct error {
  errc code = errc::ok;
  std::string message;
};

// A value or an error. Cheap to move; [[nodiscard]] so results are checked.
template <class T> class [[nodiscard]] result {
public:
  result(T value) : v_(std::move(value)) {}
  result(error err) : v_(std::move(err)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // REQUIRES: ok()
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // REQUIRES: !ok()
  const error& err() const { return std::get<1>(v_); }

private:
  std::variant<T, error> v_;
};

// result<void>: success or an error.
class [[nodiscard]] status {
public:
  status() = default;
  status(error err) : err_(std::move(err)) {}
  bool ok() const { return err_.code == errc::ok; }
  explicit operator bool() const { return ok(); }
  const error& err() const { return err_; }

private:
  error err_;
};

inline error make_error(errc code, std::string message) {
  return error{code, std::move(message)};
}

} // namespace shardrec::core

#define SHARDREC_ASSERT(cond)                                                            \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond);  \
      std::abort();                                                                      \
    }                                                                                    \
  } while (false)
