#include "etcd/client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace shardrec::etcd {

namespace {

using core::errc;
using core::make_error;

constexpr char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(const std::string& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto n = static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16
                   | static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8
                   | static_cast<unsigned>(static_cast<unsigned char>(in[i + 2]));
    out += alphabet[n >> 18];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  if (i < in.size()) {
    auto n = static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16;
    if (i + 1 < in.size())
      n |= static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8;
    out += alphabet[n >> 18];
    out += alphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

core::result<std::string> unbase64(const std::string& in) {
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=')
      break;
    const char* p = std::char_traits<char>::find(alphabet, 64, c);
    if (p == nullptr)
      return make_error(errc::bad_message, "etcd: a value is not base64");
    acc = (acc << 6) | static_cast<unsigned>(p - alphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

// The gateway writes 64-bit integers as strings; absent fields are zero.
std::int64_t int_field(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null())
    return 0;
  if (it->is_number_integer())
    return it->get<std::int64_t>();
  if (!it->is_string())
    return 0;
  try {
    return std::stoll(it->get<std::string>());
  } catch (...) {
    return 0;
  }
}

core::result<nlohmann::json> parse(const core::result<std::string>& text) {
  if (!text)
    return text.err();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(errc::bad_message, "etcd: an answer is not a JSON object");
  if (j.contains("error")) {
    auto msg = j.value("message", std::string());
    if (msg.empty() && j["error"].is_string())
      msg = j["error"].get<std::string>();
    return make_error(errc::invalid_argument, "etcd: " + msg);
  }
  return j;
}

core::result<key_value> decode_kv(const nlohmann::json& kv) {
  key_value out;
  auto key = unbase64(kv.value("key", std::string()));
  auto value = unbase64(kv.value("value", std::string()));
  if (!key)
    return key.err();
  if (!value)
    return value.err();
  out.key = std::move(*key);
  out.value = std::move(*value);
  out.create_revision = int_field(kv, "create_revision");
  out.mod_revision = int_field(kv, "mod_revision");
  out.version = int_field(kv, "version");
  out.lease = int_field(kv, "lease");
  return out;
}

// The smallest key greater than every key with this prefix (etcd's range_end).
std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    auto& c = prefix.back();
    if (static_cast<unsigned char>(c) < 0xff) {
      c = static_cast<char>(static_cast<unsigned char>(c) + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0'); // every key
}

nlohmann::json put_request(const std::string& key, const std::string& value,
                           std::int64_t lease) {
  nlohmann::json put{{"key", base64(key)}, {"value", base64(value)}};
  if (lease != 0)
    put["lease"] = std::to_string(lease);
  return put;
}

} // namespace

core::result<std::vector<endpoint>> parse_endpoints(const std::string& list) {
  std::vector<endpoint> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    auto comma = list.find(',', start);
    if (comma == std::string::npos)
      comma = list.size();
    std::string item = list.substr(start, comma - start);
    start = comma + 1;
    if (item.empty())
      continue;
    if (item.rfind("https://", 0) == 0)
      return make_error(errc::invalid_argument,
                        "--etcd " + item
                            + ": TLS to etcd is not supported yet; use http:// on a "
                              "private network or a local etcd proxy");
    if (item.rfind("http://", 0) == 0)
      item = item.substr(7);
    while (!item.empty() && item.back() == '/')
      item.pop_back();
    const auto colon = item.rfind(':');
    unsigned long port = 0;
    if (colon != std::string::npos && colon > 0) {
      try {
        std::size_t used = 0;
        port = std::stoul(item.substr(colon + 1), &used);
        if (used != item.size() - colon - 1)
          port = 0;
      } catch (...) {
        port = 0;
      }
    }
    if (port == 0 || port > 65535)
      return make_error(errc::invalid_argument,
                        "--etcd: '" + item + "' is not http://HOST:PORT");
    out.push_back({item.substr(0, colon), static_cast<std::uint16_t>(port)});
  }
  if (out.empty())
    return make_error(errc::invalid_argument,
                      "--etcd: no endpoint given (http://HOST:PORT, comma-separated)");
  return out;
}

std::string to_string(const std::vector<endpoint>& endpoints) {
  std::string out;
  for (const auto& e : endpoints)
    out += (out.empty() ? "http://" : ",http://") + e.host + ":" + std::to_string(e.port);
  return out;
}

client::client(std::vector<endpoint> endpoints, std::chrono::milliseconds timeout)
    : endpoints_(std::move(endpoints)), timeout_(timeout) {
  SHARDREC_ASSERT(!endpoints_.empty());
}

namespace {

// One POST on a fresh connection, within `timeout` in all; the body, or why not.
// etcd's gateway answers a refused request with a JSON error in a chunked
// body with trailers (which Beast reads; cpp-httplib 0.11 does not).
core::result<std::string> post(const endpoint& e, const std::string& path,
                               const std::string& body,
                               std::chrono::milliseconds timeout) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  using tcp = boost::asio::ip::tcp;
  try {
    boost::asio::io_context io;
    tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(timeout);
    stream.connect(resolver.resolve(e.host, std::to_string(e.port)));
    http::request<http::string_body> req{http::verb::post, path, 11};
    req.set(http::field::host, e.host + ":" + std::to_string(e.port));
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    http::read(stream, buffer, parser);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    auto res = parser.release();
    if (res.result_int() >= 500 && res.body().find("\"error\"") == std::string::npos)
      return make_error(errc::io_error, "HTTP " + std::to_string(res.result_int()));
    return std::move(res.body());
  } catch (const std::exception& ex) {
    return make_error(errc::io_error, ex.what());
  }
}

} // namespace

core::result<std::string> client::call(const std::string& path, const std::string& body) {
  std::string why;
  for (std::size_t k = 0; k < endpoints_.size(); ++k) {
    const auto i = (preferred_ + k) % endpoints_.size();
    auto res = post(endpoints_[i], path, body, timeout_);
    if (!res) {
      why += (why.empty() ? "" : "; ") + endpoints_[i].host + ":"
             + std::to_string(endpoints_[i].port) + ": " + res.err().message;
      continue;
    }
    preferred_ = i;
    return res;
  }
  return make_error(errc::io_error, "etcd " + to_string(endpoints_) + " " + path
                                        + " did not answer: " + why);
}

core::result<std::int64_t> client::grant(std::int64_t ttl_seconds) {
  auto j = parse(call("/v3/lease/grant", nlohmann::json{{"TTL", ttl_seconds}}.dump()));
  if (!j)
    return j.err();
  const auto id = int_field(*j, "ID");
  if (id == 0)
    return make_error(errc::bad_message, "etcd: lease grant answered no lease id");
  return id;
}

core::result<std::int64_t> client::keep_alive(std::int64_t lease) {
  auto j = parse(
      call("/v3/lease/keepalive", nlohmann::json{{"ID", std::to_string(lease)}}.dump()));
  if (!j)
    return j.err();
  // A stream of one message: {"result": {..., "TTL": "2"}}; no TTL: expired.
  auto it = j->find("result");
  if (it == j->end() || !it->is_object())
    return make_error(errc::bad_message, "etcd: lease keep-alive answered no result");
  return int_field(*it, "TTL");
}

core::status client::revoke(std::int64_t lease) {
  auto j = parse(
      call("/v3/lease/revoke", nlohmann::json{{"ID", std::to_string(lease)}}.dump()));
  if (!j && j.err().message.find("lease not found") == std::string::npos)
    return j.err();
  return {};
}

core::result<std::int64_t> client::put(const std::string& key, const std::string& value,
                                       std::int64_t lease) {
  auto j = parse(call("/v3/kv/put", put_request(key, value, lease).dump()));
  if (!j)
    return j.err();
  return int_field(j->value("header", nlohmann::json::object()), "revision");
}

core::result<bool> client::put_if(const std::string& key, const std::string& value,
                                  std::int64_t expected, std::int64_t lease) {
  nlohmann::json txn{{"compare",
                      {{{"target", "MOD"},
                        {"key", base64(key)},
                        {"result", "EQUAL"},
                        {"mod_revision", std::to_string(expected)}}}},
                     {"success", {{{"request_put", put_request(key, value, lease)}}}}};
  auto j = parse(call("/v3/kv/txn", txn.dump()));
  if (!j)
    return j.err();
  return j->value("succeeded", false);
}

core::result<std::optional<key_value>> client::get(const std::string& key) {
  auto j = parse(call("/v3/kv/range", nlohmann::json{{"key", base64(key)}}.dump()));
  if (!j)
    return j.err();
  auto it = j->find("kvs");
  if (it == j->end() || !it->is_array() || it->empty())
    return std::optional<key_value>{};
  auto kv = decode_kv(it->front());
  if (!kv)
    return kv.err();
  return std::optional<key_value>{std::move(*kv)};
}

core::result<std::vector<key_value>> client::list(const std::string& prefix) {
  auto j =
      parse(call("/v3/kv/range", nlohmann::json{{"key", base64(prefix)},
                                                {"range_end", base64(prefix_end(prefix))}}
                                     .dump()));
  if (!j)
    return j.err();
  std::vector<key_value> out;
  auto it = j->find("kvs");
  if (it == j->end() || !it->is_array())
    return out;
  for (const auto& kv : *it) {
    auto d = decode_kv(kv);
    if (!d)
      return d.err();
    out.push_back(std::move(*d));
  }
  return out;
}

core::result<std::int64_t> client::erase(const std::string& key) {
  auto j = parse(call("/v3/kv/deleterange", nlohmann::json{{"key", base64(key)}}.dump()));
  if (!j)
    return j.err();
  return int_field(*j, "deleted");
}

} // namespace shardrec::etcd
