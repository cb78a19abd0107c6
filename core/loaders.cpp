#include "core/loaders.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

#include "core/line_reader.hpp"

namespace shardrec::core {

std::optional<data_format> parse_data_format(std::string_view name) {
  if (name == "movielens")
    return data_format::movielens;
  if (name == "csv")
    return data_format::ml_csv;
  if (name == "ml1m")
    return data_format::ml1m;
  if (name == "events")
    return data_format::events;
  if (name == "online-retail")
    return data_format::online_retail;
  return std::nullopt;
}

const char* to_string(data_format f) {
  switch (f) {
    case data_format::movielens: return "movielens";
    case data_format::ml_csv: return "csv";
    case data_format::ml1m: return "ml1m";
    case data_format::events: return "events";
    case data_format::online_retail: return "online-retail";
  }
  return "unknown";
}

namespace {

// ---- small parsing helpers -------------------------------------------------

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool is_blank(std::string_view s) {
  return trim(s).empty();
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i]))
        != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// The offending text for a message, shortened so a binary line cannot flood it.
std::string quoted(std::string_view s) {
  constexpr std::size_t max_shown = 40;
  std::string r = "'";
  r.append(s.substr(0, max_shown));
  if (s.size() > max_shown)
    r += "...";
  r += "'";
  return r;
}

std::string format_number(float v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

bool parse_float(std::string_view s, float& out) {
  s = trim(s);
  if (!s.empty() && s.front() == '+')
    s.remove_prefix(1);
  if (s.empty())
    return false;
  auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size() && std::isfinite(out);
}

template <class Int> bool parse_int(std::string_view s, Int& out) {
  s = trim(s);
  if (!s.empty() && s.front() == '+')
    s.remove_prefix(1);
  if (s.empty())
    return false;
  auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size();
}

// Exactly `n` digits at s[pos..], advancing pos.
bool digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > s.size())
    return false;
  int v = 0;
  for (std::size_t k = 0; k < n; ++k) {
    char c = s[pos + k];
    if (c < '0' || c > '9')
      return false;
    v = v * 10 + (c - '0');
  }
  pos += n;
  out = v;
  return true;
}

// One or two digits at s[pos..].
bool short_digits(std::string_view s, std::size_t& pos, int& out) {
  if (!digits(s, pos, 1, out))
    return false;
  int second = 0;
  std::size_t p = pos;
  if (digits(s, p, 1, second)) {
    out = out * 10 + second;
    pos = p;
  }
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, int m, int d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool valid_date_time(int y, int mo, int d, int h, int mi, int s) {
  static constexpr std::array<int, 12> month_days{31, 29, 31, 30, 31, 30,
                                                  31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || d > month_days[static_cast<std::size_t>(mo - 1)])
    return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo == 2 && d == 29 && !leap)
    return false;
  return h >= 0 && h <= 23 && mi >= 0 && mi <= 59 && s >= 0 && s <= 59;
}

std::int64_t to_unix(int y, int mo, int d, int h, int mi, int s) {
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

// "12/1/2010 8:26[:SS]", the UCI spreadsheet export of Online Retail.
std::optional<std::int64_t> parse_us_datetime(std::string_view s) {
  std::size_t p = 0;
  int mo = 0, d = 0, y = 0, h = 0, mi = 0, sec = 0;
  if (!short_digits(s, p, mo) || p >= s.size() || s[p++] != '/')
    return std::nullopt;
  if (!short_digits(s, p, d) || p >= s.size() || s[p++] != '/')
    return std::nullopt;
  if (!digits(s, p, 4, y) || p >= s.size() || s[p++] != ' ')
    return std::nullopt;
  if (!short_digits(s, p, h) || p >= s.size() || s[p++] != ':')
    return std::nullopt;
  if (!digits(s, p, 2, mi))
    return std::nullopt;
  if (p < s.size() && (s[p++] != ':' || !digits(s, p, 2, sec)))
    return std::nullopt;
  if (p != s.size() || !valid_date_time(y, mo, d, h, mi, sec))
    return std::nullopt;
  return to_unix(y, mo, d, h, mi, sec);
}

// Integer seconds or ISO 8601.
std::optional<std::int64_t> parse_timestamp(std::string_view s) {
  std::int64_t v = 0;
  if (parse_int(s, v))
    return v;
  return parse_iso_datetime(trim(s));
}

// ---- errors and the per-line driver -----------------------------------------

struct line_ctx {
  const std::string& file;
  std::size_t line;

  std::string prefix() const { return file + ":" + std::to_string(line) + ": "; }
  error fail(errc code, std::string_view field, const std::string& what) const {
    return make_error(code, prefix() + "field '" + std::string(field) + "': " + what);
  }
  error fail_line(errc code, const std::string& what) const {
    return make_error(code, prefix() + what);
  }
};

// Splits a CSV data line that must have as many columns as its header;
// false with the error in `e` otherwise.
bool split_header_row(csv_splitter& csv, std::string_view line, std::size_t n_cols,
                      const line_ctx& ctx, error& e) {
  if (!csv.split(line)) {
    e = ctx.fail_line(errc::parse_error, "unbalanced quotes");
    return false;
  }
  if (csv.size() != n_cols) {
    e = ctx.fail_line(errc::parse_error, "expected " + std::to_string(n_cols)
                                             + " columns as in the header, found "
                                             + std::to_string(csv.size()));
    return false;
  }
  return true;
}

std::string expect_columns(std::size_t want, std::string_view names, std::size_t got) {
  return "expected " + std::to_string(want) + " columns (" + std::string(names)
         + "), found " + std::to_string(got);
}

// Runs `parse(line, ctx, report, err)` on each non-blank line left in `in`.
// parse returns false with `err` set for a bad line; it must not touch the
// dataset before the whole line has been validated.
template <class Parse>
result<load_report> drive(line_reader& in, load_report rep, const load_options& opt,
                          Parse&& parse) {
  std::string_view line;
  error err;
  while (in.next(line)) {
    if (is_blank(line))
      continue;
    ++rep.lines;
    line_ctx ctx{rep.file, in.line_number()};
    if (parse(line, ctx, rep, err))
      continue;
    if (!opt.skip_bad_lines)
      return err;
    ++rep.skipped;
    if (rep.problems.size() < opt.max_problems)
      rep.problems.push_back(std::move(err.message));
  }
  if (!in.read_status().ok())
    return in.read_status().err();
  return rep;
}

// Reads the header line (the first line of the file).
result<std::string> read_header(line_reader& in, std::string_view expected) {
  std::string_view line;
  if (!in.next(line)) {
    if (!in.read_status().ok())
      return in.read_status().err();
    return make_error(errc::parse_error, in.path() + ":1: empty file, expected a header "
                                             + std::string(expected));
  }
  return std::string(line);
}

// Maps header names to column positions.
class header_columns {
public:
  // Returns false with `err` set on a malformed header or a repeated name.
  bool parse(const std::string& header, const line_ctx& ctx, error& err) {
    csv_splitter sp;
    if (!sp.split(header)) {
      err = ctx.fail_line(errc::parse_error, "malformed header: unbalanced quotes");
      return false;
    }
    for (auto f : sp.fields()) {
      std::string name(trim(f));
      if (!name.empty() && find(name) != npos) {
        err = ctx.fail_line(errc::parse_error, "header repeats column '" + name + "'");
        return false;
      }
      names_.push_back(std::move(name));
    }
    return true;
  }
  static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();
  // Case-insensitive; npos if absent.
  std::size_t find(std::string_view name) const {
    for (std::size_t i = 0; i < names_.size(); ++i)
      if (iequals(names_[i], name))
        return i;
    return npos;
  }
  std::size_t size() const { return names_.size(); }
  const std::string& name(std::size_t i) const { return names_[i]; }

private:
  std::vector<std::string> names_;
};

// Remembers the last id looked up: consecutive lines often share a user
// (ratings.csv is sorted by user) or an invoice's customer.
class intern_cache {
public:
  index_t get(id_map& m, std::string_view id) {
    if (!valid_ || id != last_) {
      index_ = m.intern(id);
      last_.assign(id);
      valid_ = true;
    }
    return index_;
  }

private:
  std::string last_;
  index_t index_ = 0;
  bool valid_ = false;
};

// Interns a device / location name into a 16-bit index. Returns false if the
// name is new and the map already holds 65,536 names; does not intern then.
class context_interner {
public:
  bool check(const id_map& m, std::string_view name) const {
    if (valid_ && name == last_)
      return true;
    return m.size() <= std::numeric_limits<std::uint16_t>::max() || m.find(name);
  }
  // REQUIRES: check(m, name)
  std::uint16_t get(id_map& m, std::string_view name) {
    if (!valid_ || name != last_) {
      index_ = static_cast<std::uint16_t>(m.intern(name));
      last_.assign(name);
      valid_ = true;
    }
    return index_;
  }

private:
  std::string last_;
  std::uint16_t index_ = 0;
  bool valid_ = false;
};

bool check_id(std::string_view id, std::string_view field, const line_ctx& ctx,
              error& err) {
  if (trim(id).empty()) {
    err = ctx.fail(errc::parse_error, field, "empty id");
    return false;
  }
  return true;
}

std::string scale_text(const rating_scale& s) {
  return format_number(s.min) + ".." + format_number(s.max);
}

bool parse_rating(std::string_view s, const rating_scale& scale, std::string_view field,
                  const line_ctx& ctx, float& out, error& err) {
  if (!parse_float(s, out)) {
    err = ctx.fail(errc::parse_error, field, "not a number: " + quoted(s));
    return false;
  }
  if (out < scale.min || out > scale.max) {
    err = ctx.fail(errc::out_of_range, field,
                   format_number(out) + " is outside the scale " + scale_text(scale));
    return false;
  }
  return true;
}

bool parse_ts_field(std::string_view s, std::string_view field, const line_ctx& ctx,
                    std::int64_t& out, error& err) {
  if (auto t = parse_timestamp(s)) {
    out = *t;
    return true;
  }
  err = ctx.fail(errc::parse_error, field,
                 "not integer seconds or an ISO 8601 date-time: " + quoted(s));
  return false;
}

// ---- rating files: movielens, csv, ml1m ---------------------------------------

result<load_report> load_ratings(line_reader& in, data_format fmt, dataset& ds,
                                 const load_options& opt, load_report rep) {
  const rating_scale scale = opt.scale.value_or(
      fmt == data_format::ml_csv ? rating_scale{0.5f, 5.0f} : rating_scale{1.0f, 5.0f});
  ds.scale = scale;

  static constexpr std::array<std::string_view, 4> ml_csv_names{"userId", "movieId",
                                                                "rating", "timestamp"};
  std::array<std::string_view, 4> fields_named{"user", "item", "rating", "timestamp"};
  if (fmt == data_format::ml_csv) {
    auto header = read_header(in, "userId,movieId,rating,timestamp");
    if (!header)
      return header.err();
    csv_splitter sp;
    bool ok = sp.split(*header) && sp.size() == 4;
    for (std::size_t k = 0; ok && k < 4; ++k)
      ok = iequals(trim(sp[k]), ml_csv_names[k]);
    if (!ok)
      return make_error(errc::parse_error, rep.file + ":1: expected the header "
                                               + "userId,movieId,rating,timestamp, found "
                                               + quoted(*header));
    fields_named = ml_csv_names;
  }

  csv_splitter csv;
  std::vector<std::string_view> plain;
  intern_cache users;
  const char* names = fmt == data_format::ml_csv ? "userId, movieId, rating, timestamp"
                                                 : "user, item, rating, timestamp";
  return drive(
      in, std::move(rep), opt,
      [&](std::string_view line, const line_ctx& ctx, load_report& r, error& err) {
        const std::vector<std::string_view>* f = &plain;
        if (fmt == data_format::ml_csv) {
          if (!csv.split(line)) {
            err = ctx.fail_line(errc::parse_error, "unbalanced quotes");
            return false;
          }
          f = &csv.fields();
        } else {
          split_plain(line, fmt == data_format::ml1m ? "::" : "\t", plain);
        }
        const auto& v = *f;
        bool ts_optional = fmt == data_format::ml1m;
        if (v.size() != 4 && !(ts_optional && v.size() == 3)) {
          err = ctx.fail_line(errc::parse_error, expect_columns(4, names, v.size()));
          return false;
        }
        if (!check_id(v[0], fields_named[0], ctx, err)
            || !check_id(v[1], fields_named[1], ctx, err))
          return false;
        event e;
        e.type = event_type::rating;
        if (!parse_rating(v[2], scale, fields_named[2], ctx, e.value, err))
          return false;
        if (v.size() == 4) {
          if (!parse_int(v[3], e.timestamp)) {
            err = ctx.fail(errc::parse_error, fields_named[3],
                           "not an integer: " + quoted(v[3]));
            return false;
          }
        }
        e.user = users.get(ds.users, trim(v[0]));
        e.item = ds.items.intern(trim(v[1]));
        ds.events.push_back(e);
        ++r.accepted;
        return true;
      });
}

// ---- events CSV ---------------------------------------------------------------

result<load_report> load_events_csv(line_reader& in, dataset& ds, const load_options& opt,
                                    load_report rep) {
  if (opt.scale)
    ds.scale = *opt.scale;
  const rating_scale scale = ds.scale;
  auto header = read_header(in, "user,item,type,value,timestamp[,device][,location]");
  if (!header)
    return header.err();
  header_columns cols;
  error err;
  if (!cols.parse(*header, line_ctx{rep.file, 1}, err))
    return err;
  const std::size_t c_user = cols.find("user"), c_item = cols.find("item"),
                    c_type = cols.find("type"), c_value = cols.find("value"),
                    c_ts = cols.find("timestamp"), c_device = cols.find("device"),
                    c_location = cols.find("location");
  for (auto [c, name] :
       {std::pair{c_user, "user"}, std::pair{c_item, "item"}, std::pair{c_type, "type"},
        std::pair{c_value, "value"}, std::pair{c_ts, "timestamp"}})
    if (c == header_columns::npos)
      return make_error(errc::parse_error, rep.file + ":1: the header lacks the column '"
                                               + name + "'; found " + quoted(*header));

  csv_splitter csv;
  intern_cache users, items;
  context_interner devices, locations;
  const std::size_t n_cols = cols.size();
  return drive(
      in, std::move(rep), opt,
      [&](std::string_view line, const line_ctx& ctx, load_report& r, error& e_out) {
        if (!split_header_row(csv, line, n_cols, ctx, e_out))
          return false;
        const auto& v = csv.fields();

        if (!check_id(v[c_user], "user", ctx, e_out)
            || !check_id(v[c_item], "item", ctx, e_out))
          return false;
        event e;
        auto type = parse_event_type(trim(v[c_type]));
        if (!type) {
          e_out = ctx.fail(errc::parse_error, "type",
                           "unknown event type " + quoted(v[c_type])
                               + " (view, click, cart, purchase, rating, cancel)");
          return false;
        }
        e.type = *type;
        if (e.type == event_type::rating) {
          if (!parse_rating(v[c_value], scale, "value", ctx, e.value, e_out))
            return false;
        } else if (trim(v[c_value]).empty()) {
          e.value = 1.0f;
        } else if (!parse_float(v[c_value], e.value)) {
          e_out =
              ctx.fail(errc::parse_error, "value", "not a number: " + quoted(v[c_value]));
          return false;
        }
        if (!trim(v[c_ts]).empty()
            && !parse_ts_field(v[c_ts], "timestamp", ctx, e.timestamp, e_out))
          return false;
        std::string_view device = c_device == header_columns::npos ? "" : v[c_device];
        std::string_view location =
            c_location == header_columns::npos ? "" : v[c_location];
        if (!devices.check(ds.devices, device)) {
          e_out =
              ctx.fail(errc::out_of_range, "device", "more than 65535 distinct devices");
          return false;
        }
        if (!locations.check(ds.locations, location)) {
          e_out = ctx.fail(errc::out_of_range, "location",
                           "more than 65535 distinct locations");
          return false;
        }
        e.user = users.get(ds.users, trim(v[c_user]));
        e.item = items.get(ds.items, trim(v[c_item]));
        e.device = devices.get(ds.devices, device);
        e.location = locations.get(ds.locations, location);
        ds.events.push_back(e);
        ++r.accepted;
        return true;
      });
}

// ---- Online Retail --------------------------------------------------------------

result<load_report> load_online_retail(line_reader& in, dataset& ds,
                                       const load_options& opt, load_report rep) {
  if (opt.scale)
    ds.scale = *opt.scale;
  auto header = read_header(in, "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,"
                                "UnitPrice,CustomerID,Country");
  if (!header)
    return header.err();
  header_columns cols;
  error err;
  if (!cols.parse(*header, line_ctx{rep.file, 1}, err))
    return err;
  static constexpr std::array<std::string_view, 7> used{
      "InvoiceNo",   "StockCode",  "Description", "Quantity",
      "InvoiceDate", "CustomerID", "Country"};
  std::array<std::size_t, 7> c{};
  for (std::size_t k = 0; k < used.size(); ++k) {
    c[k] = cols.find(used[k]);
    if (c[k] == header_columns::npos)
      return make_error(errc::parse_error, rep.file + ":1: the header lacks the column '"
                                               + std::string(used[k]) + "'; found "
                                               + quoted(*header));
  }
  const std::size_t c_invoice = c[0], c_stock = c[1], c_desc = c[2], c_qty = c[3],
                    c_date = c[4], c_customer = c[5], c_country = c[6];

  csv_splitter csv;
  intern_cache users, items;
  context_interner countries;
  std::string last_date;
  std::int64_t last_ts = 0;
  const std::size_t n_cols = cols.size();
  return drive(
      in, std::move(rep), opt,
      [&](std::string_view line, const line_ctx& ctx, load_report& r, error& e_out) {
        if (!split_header_row(csv, line, n_cols, ctx, e_out))
          return false;
        const auto& v = csv.fields();

        std::string_view customer = trim(v[c_customer]);
        if (customer.empty() || customer == "NA") {
          ++r.ignored;
          return true;
        }
        if (customer.size() > 2 && customer.substr(customer.size() - 2) == ".0")
          customer.remove_suffix(2);
        if (!check_id(v[c_stock], "StockCode", ctx, e_out))
          return false;
        long long qty = 0;
        if (!parse_int(v[c_qty], qty)) {
          e_out = ctx.fail(errc::parse_error, "Quantity",
                           "not an integer: " + quoted(v[c_qty]));
          return false;
        }
        std::int64_t ts = 0;
        std::string_view date = trim(v[c_date]);
        if (date == last_date) {
          ts = last_ts;
        } else {
          auto t = parse_iso_datetime(date);
          if (!t)
            t = parse_us_datetime(date);
          if (!t) {
            e_out = ctx.fail(errc::parse_error, "InvoiceDate",
                             "not a date-time like 2010-12-01 08:26:00: " + quoted(date));
            return false;
          }
          ts = last_ts = *t;
          last_date.assign(date);
        }
        std::string_view country = trim(v[c_country]);
        if (!countries.check(ds.locations, country)) {
          e_out = ctx.fail(errc::out_of_range, "Country",
                           "more than 65535 distinct locations");
          return false;
        }
        if (qty == 0) {
          ++r.ignored;
          return true;
        }
        std::string_view invoice = trim(v[c_invoice]);
        bool cancel =
            qty < 0 || (!invoice.empty() && (invoice[0] == 'C' || invoice[0] == 'c'));
        event e;
        e.user = users.get(ds.users, customer);
        e.item = items.get(ds.items, trim(v[c_stock]));
        e.type = cancel ? event_type::cancel : event_type::purchase;
        e.value = static_cast<float>(qty < 0 ? -qty : qty);
        e.timestamp = ts;
        e.location = countries.get(ds.locations, country);
        ds.events.push_back(e);
        ++r.accepted;
        std::string_view desc = trim(v[c_desc]);
        if (!desc.empty()
            && (ds.item_meta.size() <= e.item || ds.item_meta[e.item].title.empty())) {
          auto& info = ds.item_meta_at(e.item);
          info.title.assign(desc);
          info.text.assign(desc);
        }
        return true;
      });
}

// ---- side information ---------------------------------------------------------

void split_list(std::string_view s, std::vector<std::string>& out) {
  out.clear();
  if (trim(s).empty())
    return;
  std::vector<std::string_view> parts;
  split_plain(s, "|", parts);
  for (auto p : parts)
    if (!trim(p).empty())
      out.emplace_back(trim(p));
}

std::string directory_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

// The genre names of u.genre ("name|index" lines), ordered by index.
result<std::vector<std::string>> read_genres(const std::string& path) {
  auto in = line_reader::open(path);
  if (!in)
    return in.err();
  std::vector<std::string> names;
  std::vector<std::string_view> f;
  std::string_view line;
  while (in->next(line)) {
    if (is_blank(line))
      continue;
    line_ctx ctx{path, in->line_number()};
    split_plain(line, "|", f);
    std::size_t idx = 0;
    if (f.size() != 2)
      return ctx.fail_line(errc::parse_error, expect_columns(2, "name, index", f.size()));
    if (!parse_int(f[1], idx) || idx > 1000)
      return ctx.fail(errc::parse_error, "index", "not a small integer: " + quoted(f[1]));
    if (names.size() <= idx)
      names.resize(idx + 1);
    names[idx] = std::string(trim(f[0]));
  }
  if (!in->read_status().ok())
    return in->read_status().err();
  return names;
}

const std::vector<std::string>& ml100k_genres() {
  static const std::vector<std::string> g{
      "unknown",   "Action",   "Adventure",   "Animation", "Children's",
      "Comedy",    "Crime",    "Documentary", "Drama",     "Fantasy",
      "Film-Noir", "Horror",   "Musical",     "Mystery",   "Romance",
      "Sci-Fi",    "Thriller", "War",         "Western"};
  return g;
}

result<load_report> load_u_item(line_reader& in, dataset& ds, load_report rep,
                                std::string first_line) {
  std::vector<std::string> genres = ml100k_genres();
  const std::string genre_file = directory_of(rep.file) + "u.genre";
  if (auto probe = line_reader::open(genre_file)) {
    auto g = read_genres(genre_file);
    if (!g)
      return g.err();
    genres = std::move(*g);
  }
  const std::size_t n_cols = 5 + genres.size();
  std::vector<std::string_view> f;
  auto parse = [&](std::string_view line, const line_ctx& ctx, load_report& r,
                   error& err) {
    split_plain(line, "|", f);
    if (f.size() != n_cols) {
      err = ctx.fail_line(errc::parse_error,
                          expect_columns(n_cols,
                                         "id, title, release date, video release "
                                         "date, url, one flag per genre",
                                         f.size()));
      return false;
    }
    if (!check_id(f[0], "movie id", ctx, err))
      return false;
    for (std::size_t g = 0; g < genres.size(); ++g) {
      auto flag = trim(f[5 + g]);
      if (flag != "0" && flag != "1") {
        err = ctx.fail(errc::parse_error, "genre " + genres[g],
                       "not 0 or 1: " + quoted(flag));
        return false;
      }
    }
    auto& info = ds.item_meta_at(ds.items.intern(trim(f[0])));
    info.title.assign(trim(f[1]));
    info.genres.clear();
    for (std::size_t g = 0; g < genres.size(); ++g)
      if (trim(f[5 + g]) == "1")
        info.genres.push_back(genres[g]);
    ++r.accepted;
    return true;
  };
  ++rep.lines;
  error err;
  if (!parse(first_line, line_ctx{rep.file, 1}, rep, err))
    return err;
  return drive(in, std::move(rep), load_options{}, parse);
}

result<load_report> load_item_csv(line_reader& in, dataset& ds, load_report rep,
                                  const std::string& header, bool movies) {
  header_columns cols;
  error err;
  if (!cols.parse(header, line_ctx{rep.file, 1}, err))
    return err;
  const std::size_t c_id = cols.find(movies ? "movieId" : "item");
  const std::size_t c_title = cols.find("title"), c_genres = cols.find("genres"),
                    c_tags = cols.find("tags"), c_text = cols.find("text");
  if (c_title == header_columns::npos || c_genres == header_columns::npos
      || (!movies && (c_tags == header_columns::npos || c_text == header_columns::npos)))
    return make_error(errc::parse_error, rep.file + ":1: expected the header "
                                             + (movies ? "movieId,title,genres"
                                                       : "item,title,genres,tags,text")
                                             + ", found " + quoted(header));
  csv_splitter csv;
  const std::size_t n_cols = cols.size();
  return drive(in, std::move(rep), load_options{},
               [&](std::string_view line, const line_ctx& ctx, load_report& r, error& e) {
                 if (!split_header_row(csv, line, n_cols, ctx, e))
                   return false;
                 const auto& v = csv.fields();

                 if (!check_id(v[c_id], movies ? "movieId" : "item", ctx, e))
                   return false;
                 auto& info = ds.item_meta_at(ds.items.intern(trim(v[c_id])));
                 info.title.assign(v[c_title]);
                 split_list(v[c_genres], info.genres);
                 if (movies) {
                   if (info.genres.size() == 1 && info.genres[0] == "(no genres listed)")
                     info.genres.clear();
                 } else {
                   split_list(v[c_tags], info.tags);
                   info.text.assign(v[c_text]);
                 }
                 ++r.accepted;
                 return true;
               });
}

// ---- writing ----------------------------------------------------------------------

// Buffered CSV output; fields are quoted only when they must be.
class csv_writer {
public:
  static result<csv_writer> open(const std::string& path) {
    csv_writer w;
    w.path_ = path;
    w.file_ = std::fopen(path.c_str(), "wb");
    if (w.file_ == nullptr)
      return make_error(errc::io_error, "cannot create '" + path + "'");
    return w;
  }
  csv_writer(csv_writer&& o) noexcept
      : path_(std::move(o.path_)), file_(std::exchange(o.file_, nullptr)),
        buf_(std::move(o.buf_)), first_(o.first_) {}
  csv_writer& operator=(csv_writer&&) = delete;
  ~csv_writer() {
    if (file_ != nullptr)
      std::fclose(file_);
  }

  // Returns false if the text holds a line break (not representable).
  bool field(std::string_view s) {
    if (!first_)
      buf_ += ',';
    first_ = false;
    if (s.find_first_of("\r\n") != std::string_view::npos)
      return false;
    if (s.find_first_of(",\"") == std::string_view::npos
        && (s.empty()
            || (s.front() != ' ' && s.back() != ' ' && s.front() != '\t'
                && s.back() != '\t'))) {
      buf_ += s;
      return true;
    }
    buf_ += '"';
    for (char ch : s) {
      if (ch == '"')
        buf_ += '"';
      buf_ += ch;
    }
    buf_ += '"';
    return true;
  }
  void end_line() {
    buf_ += '\n';
    first_ = true;
    if (buf_.size() > (1u << 20))
      flush();
  }
  status close() {
    flush();
    bool bad = std::ferror(file_) != 0;
    bad = std::fclose(file_) != 0 || bad;
    file_ = nullptr;
    if (bad)
      return make_error(errc::io_error, "cannot write '" + path_ + "'");
    return {};
  }
  const std::string& path() const { return path_; }

private:
  csv_writer() = default;
  void flush() {
    std::fwrite(buf_.data(), 1, buf_.size(), file_);
    buf_.clear();
  }
  std::string path_;
  std::FILE* file_ = nullptr;
  std::string buf_;
  bool first_ = true;
};

error unwritable(const std::string& path, std::string_view what, std::string_view text) {
  return make_error(errc::invalid_argument,
                    "cannot write '" + path + "': " + std::string(what) + " "
                        + quoted(text) + " holds a line break or separator");
}

std::string join_list(const std::vector<std::string>& v) {
  std::string r;
  for (std::size_t k = 0; k < v.size(); ++k) {
    if (k > 0)
      r += '|';
    r += v[k];
  }
  return r;
}

bool listable(const std::vector<std::string>& v) {
  for (const auto& s : v)
    if (s.empty() || s.find('|') != std::string::npos || trim(s).size() != s.size())
      return false;
  return true;
}

} // namespace

std::optional<std::int64_t> parse_iso_datetime(std::string_view s) {
  std::size_t p = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  auto expect = [&](char ch) { return p < s.size() && s[p++] == ch; };
  if (!digits(s, p, 4, y) || !expect('-') || !digits(s, p, 2, mo) || !expect('-')
      || !digits(s, p, 2, d))
    return std::nullopt;
  if (p >= s.size() || (s[p] != 'T' && s[p] != ' '))
    return std::nullopt;
  ++p;
  if (!digits(s, p, 2, h) || !expect(':') || !digits(s, p, 2, mi))
    return std::nullopt;
  if (p < s.size() && s[p] == ':') {
    ++p;
    if (!digits(s, p, 2, sec))
      return std::nullopt;
  }
  std::int64_t offset = 0;
  if (p < s.size() && s[p] == 'Z') {
    ++p;
  } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    int sign = s[p++] == '-' ? -1 : 1, oh = 0, om = 0;
    if (!digits(s, p, 2, oh))
      return std::nullopt;
    if (p < s.size() && s[p] == ':')
      ++p;
    if (!digits(s, p, 2, om) || oh > 23 || om > 59)
      return std::nullopt;
    offset = sign * (oh * 3600 + om * 60);
  }
  if (p != s.size() || !valid_date_time(y, mo, d, h, mi, sec))
    return std::nullopt;
  return to_unix(y, mo, d, h, mi, sec) - offset;
}

result<load_report> load_events(const std::string& path, data_format fmt, dataset& ds,
                                const load_options& opt) {
  auto in = line_reader::open(path);
  if (!in)
    return in.err();
  load_report rep;
  rep.file = path;
  switch (fmt) {
    case data_format::movielens:
    case data_format::ml_csv:
    case data_format::ml1m: return load_ratings(*in, fmt, ds, opt, std::move(rep));
    case data_format::events: return load_events_csv(*in, ds, opt, std::move(rep));
    case data_format::online_retail:
      return load_online_retail(*in, ds, opt, std::move(rep));
  }
  return make_error(errc::invalid_argument, "unknown data format");
}

result<load_report> load_item_attributes(const std::string& path, dataset& ds) {
  auto in = line_reader::open(path);
  if (!in)
    return in.err();
  load_report rep;
  rep.file = path;
  auto first = read_header(*in, "(u.item line, movieId,title,genres or item,title,...)");
  if (!first)
    return first.err();
  csv_splitter sp;
  std::string_view first_field = sp.split(*first) && sp.size() > 0 ? trim(sp[0]) : "";
  if (iequals(first_field, "movieId"))
    return load_item_csv(*in, ds, std::move(rep), *first, true);
  if (iequals(first_field, "item"))
    return load_item_csv(*in, ds, std::move(rep), *first, false);
  if (first->find('|') != std::string::npos)
    return load_u_item(*in, ds, std::move(rep), std::move(*first));
  return make_error(errc::parse_error,
                    path
                        + ":1: unrecognised item attributes: expected u.item "
                          "(id|title|...|genre flags), movies.csv (movieId,title,genres) "
                          "or item,title,genres,tags,text; found "
                        + quoted(*first));
}

result<load_report> load_user_attributes(const std::string& path, dataset& ds) {
  auto in = line_reader::open(path);
  if (!in)
    return in.err();
  load_report rep;
  rep.file = path;
  auto first = read_header(*in, "(u.user line or user,<attribute>,...)");
  if (!first)
    return first.err();
  csv_splitter sp;
  if (sp.split(*first) && sp.size() > 0 && iequals(trim(sp[0]), "user")) {
    header_columns cols;
    error err;
    if (!cols.parse(*first, line_ctx{path, 1}, err))
      return err;
    const std::size_t n_cols = cols.size();
    return drive(
        *in, std::move(rep), load_options{},
        [&](std::string_view line, const line_ctx& ctx, load_report& r, error& e) {
          if (!split_header_row(sp, line, n_cols, ctx, e))
            return false;

          if (!check_id(sp[0], "user", ctx, e))
            return false;
          auto& info = ds.user_meta_at(ds.users.intern(trim(sp[0])));
          info.attributes.clear();
          for (std::size_t k = 1; k < n_cols; ++k)
            if (!sp[k].empty())
              info.attributes.emplace_back(cols.name(k), std::string(sp[k]));
          ++r.accepted;
          return true;
        });
  }
  std::vector<std::string_view> f;
  auto parse = [&](std::string_view line, const line_ctx& ctx, load_report& r, error& e) {
    split_plain(line, "|", f);
    if (f.size() != 5) {
      e = ctx.fail_line(errc::parse_error,
                        expect_columns(5, "id, age, gender, occupation, zip", f.size()));
      return false;
    }
    if (!check_id(f[0], "user id", ctx, e))
      return false;
    int age = 0;
    if (!parse_int(f[1], age) || age < 0) {
      e = ctx.fail(errc::parse_error, "age",
                   "not a non-negative integer: " + quoted(f[1]));
      return false;
    }
    auto& info = ds.user_meta_at(ds.users.intern(trim(f[0])));
    info.attributes = {{"age", std::to_string(age)},
                       {"gender", std::string(trim(f[2]))},
                       {"occupation", std::string(trim(f[3]))},
                       {"zip", std::string(trim(f[4]))}};
    ++r.accepted;
    return true;
  };
  if (first->find('|') == std::string::npos)
    return make_error(errc::parse_error,
                      path
                          + ":1: unrecognised user attributes: expected "
                            "u.user (id|age|gender|occupation|zip) or "
                            "user,<attribute>,...; found "
                          + quoted(*first));
  ++rep.lines;
  error err;
  if (!parse(*first, line_ctx{path, 1}, rep, err))
    return err;
  return drive(*in, std::move(rep), load_options{}, parse);
}

result<load_report> load_tags(const std::string& path, dataset& ds) {
  auto in = line_reader::open(path);
  if (!in)
    return in.err();
  load_report rep;
  rep.file = path;
  auto header = read_header(*in, "userId,movieId,tag,timestamp");
  if (!header)
    return header.err();
  csv_splitter csv;
  static constexpr std::array<std::string_view, 4> names{"userId", "movieId", "tag",
                                                         "timestamp"};
  bool ok = csv.split(*header) && csv.size() == 4;
  for (std::size_t k = 0; ok && k < 4; ++k)
    ok = iequals(trim(csv[k]), names[k]);
  if (!ok)
    return make_error(errc::parse_error, path
                                             + ":1: expected the header "
                                               "userId,movieId,tag,timestamp, found "
                                             + quoted(*header));
  return drive(
      *in, std::move(rep), load_options{},
      [&](std::string_view line, const line_ctx& ctx, load_report& r, error& e) {
        if (!csv.split(line)) {
          e = ctx.fail_line(errc::parse_error, "unbalanced quotes");
          return false;
        }
        if (csv.size() != 4) {
          e = ctx.fail_line(
              errc::parse_error,
              expect_columns(4, "userId, movieId, tag, timestamp", csv.size()));
          return false;
        }
        if (!check_id(csv[1], "movieId", ctx, e))
          return false;
        if (trim(csv[2]).empty()) {
          e = ctx.fail(errc::parse_error, "tag", "empty tag");
          return false;
        }
        std::int64_t ts = 0;
        if (!parse_int(csv[3], ts)) {
          e = ctx.fail(errc::parse_error, "timestamp",
                       "not an integer: " + quoted(csv[3]));
          return false;
        }
        ds.item_meta_at(ds.items.intern(trim(csv[1]))).tags.emplace_back(trim(csv[2]));
        ++r.accepted;
        return true;
      });
}

status write_events_csv(const dataset& ds, const std::string& path) {
  auto w = csv_writer::open(path);
  if (!w)
    return w.err();
  for (auto h : {"user", "item", "type", "value", "timestamp", "device", "location"})
    w->field(h);
  w->end_line();
  for (const auto& e : ds.events) {
    SHARDREC_ASSERT(e.user < ds.users.size() && e.item < ds.items.size());
    SHARDREC_ASSERT(e.device < ds.devices.size() && e.location < ds.locations.size());
    const std::string& user = ds.users.external(e.user);
    const std::string& item = ds.items.external(e.item);
    if (trim(user).empty() || trim(user).size() != user.size() || !w->field(user))
      return unwritable(path, "user id", user);
    if (trim(item).empty() || trim(item).size() != item.size() || !w->field(item))
      return unwritable(path, "item id", item);
    w->field(to_string(e.type));
    w->field(format_number(e.value));
    w->field(std::to_string(e.timestamp));
    const std::string& device = ds.devices.external(e.device);
    const std::string& location = ds.locations.external(e.location);
    if (!w->field(device))
      return unwritable(path, "device", device);
    if (!w->field(location))
      return unwritable(path, "location", location);
    w->end_line();
  }
  return w->close();
}

status write_items_csv(const dataset& ds, const std::string& path) {
  auto w = csv_writer::open(path);
  if (!w)
    return w.err();
  for (auto h : {"item", "title", "genres", "tags", "text"})
    w->field(h);
  w->end_line();
  const std::size_t n = std::min(ds.item_meta.size(), ds.items.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto& info = ds.item_meta[i];
    const std::string& id = ds.items.external(static_cast<index_t>(i));
    if (trim(id).empty() || trim(id).size() != id.size() || !w->field(id))
      return unwritable(path, "item id", id);
    if (!w->field(info.title))
      return unwritable(path, "title", info.title);
    std::string genres = join_list(info.genres), tags = join_list(info.tags);
    if (!listable(info.genres) || !w->field(genres))
      return unwritable(path, "genres", genres);
    if (!listable(info.tags) || !w->field(tags))
      return unwritable(path, "tags", tags);
    if (!w->field(info.text))
      return unwritable(path, "text", info.text);
    w->end_line();
  }
  return w->close();
}

status write_users_csv(const dataset& ds, const std::string& path) {
  std::vector<std::string> names;
  const std::size_t n = std::min(ds.user_meta.size(), ds.users.size());
  for (std::size_t u = 0; u < n; ++u)
    for (const auto& [name, value] : ds.user_meta[u].attributes) {
      (void)value;
      if (std::find(names.begin(), names.end(), name) == names.end())
        names.push_back(name);
    }
  for (std::size_t k = 0; k < names.size(); ++k) {
    bool clash = iequals(names[k], "user");
    for (std::size_t j = 0; j < k; ++j)
      clash = clash || iequals(names[j], names[k]);
    if (names[k].empty() || clash || trim(names[k]).size() != names[k].size())
      return make_error(errc::invalid_argument,
                        "cannot write '" + path + "': attribute name " + quoted(names[k])
                            + " must be non-empty, not 'user' and unique ignoring case");
  }
  auto w = csv_writer::open(path);
  if (!w)
    return w.err();
  w->field("user");
  for (const auto& name : names)
    if (!w->field(name))
      return unwritable(path, "attribute name", name);
  w->end_line();
  for (std::size_t u = 0; u < n; ++u) {
    const std::string& id = ds.users.external(static_cast<index_t>(u));
    if (trim(id).empty() || trim(id).size() != id.size() || !w->field(id))
      return unwritable(path, "user id", id);
    for (const auto& name : names) {
      std::string_view value;
      for (const auto& [k, v] : ds.user_meta[u].attributes)
        if (k == name) {
          value = v;
          break;
        }
      if (!w->field(value))
        return unwritable(path, "attribute value", value);
    }
    w->end_line();
  }
  return w->close();
}

} // namespace shardrec::core
