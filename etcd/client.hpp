// A small client of etcd's v3 API through its JSON gateway (POST /v3/...,
// keys and values base64-encoded), over cpp-httplib. What shardrec needs of
// etcd and nothing more: leases, put/get/list/delete, and a put guarded by a
// key's mod revision (a transaction with one compare).
//
// Endpoints are tried in order; the one that answered last is tried first
// next time. A request that no endpoint answers is an io_error naming every
// endpoint and why; an answer etcd refuses (lease not found, ...) is an
// error with etcd's own message. Not thread-safe: one client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace shardrec::etcd {

struct endpoint {
  std::string host;
  std::uint16_t port = 0;
};

// "http://HOST:PORT[,http://HOST:PORT...]" (the scheme may be left out).
// https is refused with a message (TLS to etcd is not supported yet).
core::result<std::vector<endpoint>> parse_endpoints(const std::string& list);
std::string to_string(const std::vector<endpoint>& endpoints);

struct key_value {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::int64_t lease = 0;
};

class client {
public:
  // REQUIRES: !endpoints.empty()
  explicit client(std::vector<endpoint> endpoints,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

  // A new lease of `ttl_seconds`; returns its id.
  core::result<std::int64_t> grant(std::int64_t ttl_seconds);
  // Renews the lease; returns the seconds it has left, 0 if it expired (or
  // never existed): its keys are gone then.
  core::result<std::int64_t> keep_alive(std::int64_t lease);
  // Ends the lease and deletes its keys. Not an error if it had expired.
  core::status revoke(std::int64_t lease);

  // Returns the revision of the put.
  core::result<std::int64_t> put(const std::string& key, const std::string& value,
                                 std::int64_t lease = 0);
  // Puts only if the key's mod revision is `expected` (0: the key does not
  // exist). Returns false (and changes nothing) if it is not.
  core::result<bool> put_if(const std::string& key, const std::string& value,
                            std::int64_t expected, std::int64_t lease = 0);
  // nullopt if the key does not exist.
  core::result<std::optional<key_value>> get(const std::string& key);
  // Every key starting with `prefix`, in key order.
  core::result<std::vector<key_value>> list(const std::string& prefix);
  // Deletes the key; returns how many keys it deleted (0 or 1).
  core::result<std::int64_t> erase(const std::string& key);

  const std::vector<endpoint>& endpoints() const { return endpoints_; }

private:
  // POSTs `body` (JSON) to `path` on the endpoints in turn; the parsed
  // answer's text, or an error.
  core::result<std::string> call(const std::string& path, const std::string& body);

  std::vector<endpoint> endpoints_;
  std::chrono::milliseconds timeout_;
  std::size_t preferred_ = 0;
};

} // namespace shardrec::etcd
