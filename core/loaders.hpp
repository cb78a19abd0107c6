// Loaders for the public data sets and for our own events/items CSV formats.
// Every loader appends into a `dataset&`, interning external ids in order of
// first appearance (dataset::users / items / devices / locations).
//
// Error contract, all loaders: a failure names the file, the 1-based line and
// the field ("u.data:17: field 'rating': 7 is outside the scale 1..5").
// Malformed input is errc::parse_error, a value outside its range (a rating
// off the scale, too many distinct devices) errc::out_of_range, an unopenable
// or unreadable file errc::io_error. Loading is NOT transactional: when a
// loader stops at a bad line, everything accepted before that line stays in
// the dataset (events, interned ids, side information); nothing accepted is
// lost and nothing after the bad line is read.
//
// Quoting: comma-separated files are split with RFC 4180 quoting, one record
// per line (quoted fields may hold commas and "" but not line breaks).
// Files whose name ends in ".gz" are gunzipped transparently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dataset.hpp"
#include "core/error.hpp"

namespace shardrec::core {

enum class data_format {
  movielens,     // "movielens": ML-100K u.data, tab separated: user item rating timestamp
  ml_csv,        // "csv": MovieLens ratings.csv, header userId,movieId,rating,timestamp
  ml1m,          // "ml1m": UserID::MovieID::Rating[::Timestamp], no header
  events,        // "events": our events CSV, see load_events
  online_retail, // "online-retail": UCI Online Retail CSV (or .csv.gz)
};

// Command-line names as listed above; nullopt for anything else.
std::optional<data_format> parse_data_format(std::string_view name);
const char* to_string(data_format f);

struct load_options {
  // false: stop at the first bad line and return its error.
  // true: skip bad lines, count them in load_report::skipped.
  bool skip_bad_lines = false;
  // Rating scale; default from the format (ML-100K/ML-1M 1..5, csv 0.5..5).
  // For "events" it checks `rating` events and, if set, replaces
  // dataset::scale; otherwise dataset::scale is kept and used for the check.
  std::optional<rating_scale> scale;
  // How many skipped-line messages load_report::problems keeps.
  std::size_t max_problems = 10;
};

struct load_report {
  std::string file;
  std::size_t lines = 0;    // data lines read (header and blank lines excluded)
  std::size_t accepted = 0; // events (or attribute records) taken into the dataset
  std::size_t skipped = 0;  // bad lines skipped (skip_bad_lines)
  std::size_t ignored = 0;  // valid lines deliberately not used (see the format)
  std::vector<std::string> problems; // first max_problems "file:line: field 'x': ..."
};

// Appends the events of `path` to ds.events and sets ds.scale for rating
// formats (movielens, ml1m: 1..5; csv: 0.5..5; or opt.scale).
//
// Formats:
// - movielens / csv / ml1m: one rating event per line (event_type::rating,
//   value = rating, timestamp in Unix seconds; ml1m's timestamp is optional).
// - events: a header naming the columns, in any order:
//     user,item,type,value,timestamp   required
//     device,location                  optional (other columns are ignored)
//   type is a name accepted by parse_event_type. value is a number; empty
//   means 1 except for `rating` events, whose value must lie on the scale.
//   timestamp is integer Unix seconds or ISO 8601 "YYYY-MM-DDTHH:MM:SS[Z]"
//   (UTC; a space instead of 'T' is accepted); empty means 0 (unknown).
//   device/location strings are interned into ds.devices / ds.locations
//   (empty = index 0, unknown).
// - online-retail: header InvoiceNo,StockCode,Description,Quantity,
//   InvoiceDate,UnitPrice,CustomerID,Country (any order). user = CustomerID
//   (a trailing ".0" is dropped), item = StockCode, location = Country,
//   timestamp = InvoiceDate ("2010-12-01 08:26:00" or "12/1/2010 8:26", UTC).
//   Invoices starting with 'C', or negative quantities, become
//   event_type::cancel with value |Quantity|; the rest event_type::purchase
//   with value Quantity. Lines without CustomerID and lines with Quantity 0
//   count as `ignored`. The first Description seen for an item becomes its
//   item_info::title and ::text.
result<load_report> load_events(const std::string& path, data_format fmt, dataset& ds,
                                const load_options& opt = {});

// Item side information; the format is detected from the first line:
// - ML-100K u.item: id|title|release|video release|url|19 genre flags. Genre
//   names come from u.genre in the same folder if present (else the ML-100K
//   list). Sets title and genres.
// - MovieLens movies.csv: header movieId,title,genres; genres separated by
//   '|', "(no genres listed)" = none. Titles may be quoted and hold commas.
// - our items CSV (write_items_csv): header item,title,genres,tags,text;
//   genres and tags separated by '|'.
// Unknown items are interned (catalogue items without events stay
// recommendable by content); their fields replace earlier values.
result<load_report> load_item_attributes(const std::string& path, dataset& ds);

// User side information into ds.user_meta, format detected from the first
// line:
// - ML-100K u.user: id|age|gender|occupation|zip -> attributes "age",
//   "gender", "occupation", "zip" (age must be an integer).
// - our users CSV (write_users_csv): header user,<name>,<name>... ; every
//   non-empty cell becomes attribute (<name>, value).
// Unknown users are interned. Attributes replace the user's earlier ones.
result<load_report> load_user_attributes(const std::string& path, dataset& ds);

// MovieLens tags.csv (userId,movieId,tag,timestamp): appends each tag
// application to item_info::tags of its movie (duplicates kept, so a tag
// applied by many users weighs more). Users are not interned.
result<load_report> load_tags(const std::string& path, dataset& ds);

// Writes ds.events in the events format with header
// user,item,type,value,timestamp,device,location, one line per event in
// ds.events order. Values are written in the shortest form that reads back
// to the same float, so write -> load_events(events) reproduces every
// event's external ids, type, value, timestamp, device and location.
// Fails with errc::invalid_argument if an id holds a line break, and
// errc::io_error if the file cannot be written.
status write_events_csv(const dataset& ds, const std::string& path);

// Writes ds.item_meta as the items CSV (item,title,genres,tags,text) read by
// load_item_attributes, one line per item with an item_meta entry. Genre and
// tag strings must not contain '|' or line breaks (errc::invalid_argument).
status write_items_csv(const dataset& ds, const std::string& path);

// Writes ds.user_meta as the users CSV read by load_user_attributes: header
// `user` plus the union of attribute names in order of first appearance.
status write_users_csv(const dataset& ds, const std::string& path);

// Parses an ISO 8601 UTC date-time "YYYY-MM-DD[T| ]HH:MM[:SS][Z]" into Unix
// seconds; nullopt if malformed or out of range.
std::optional<std::int64_t> parse_iso_datetime(std::string_view s);

} // namespace shardrec::core
