#include "core/loaders.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "core/line_reader.hpp"
#include "tests/data_dir.hpp"

namespace shardrec::core {
namespace {

const std::string fixtures = std::string(SHARDREC_TEST_DATA) + "/";

// A file of the public data sets; the test skips first when it is absent.
std::string real(const std::string& rel) {
  return test_data::path(rel);
}

// Writes `content` to a fresh file in the test temp dir and returns its path.
std::string temp_file(const std::string& name, const std::string& content) {
  std::string path = ::testing::TempDir() + "loaders_test_" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  return path;
}

// CPU and wall seconds since construction, printed as figures; speed targets
// live in bench/, not here.
struct stopwatch {
  std::chrono::steady_clock::time_point wall0 = std::chrono::steady_clock::now();
  std::clock_t cpu0 = std::clock();
  double cpu() const { return static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC; }
  double wall() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0)
        .count();
  }
};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// ---- line_reader and csv_splitter --------------------------------------------

TEST(LineReader, StripsCrLfBomAndKeepsLastLineWithoutNewline) {
  auto path = temp_file("lines.txt", "\xEF\xBB\xBF"
                                     "first\r\nsecond\n\nlast");
  auto r = line_reader::open(path);
  ASSERT_TRUE(r.ok()) << r.err().message;
  std::string_view line;
  std::vector<std::string> got;
  std::vector<std::size_t> numbers;
  while (r->next(line)) {
    got.emplace_back(line);
    numbers.push_back(r->line_number());
  }
  EXPECT_TRUE(r->read_status().ok());
  EXPECT_EQ(got, (std::vector<std::string>{"first", "second", "", "last"}));
  EXPECT_EQ(numbers, (std::vector<std::size_t>{1, 2, 3, 4}));
}

TEST(LineReader, LongLinesCrossBufferBoundaries) {
  std::string long_line(700000, 'x');
  long_line[123456] = 'y';
  auto path = temp_file("long.txt", "a\n" + long_line + "\nb\n");
  auto r = line_reader::open(path);
  ASSERT_TRUE(r.ok());
  std::string_view line;
  ASSERT_TRUE(r->next(line));
  EXPECT_EQ(line, "a");
  ASSERT_TRUE(r->next(line));
  EXPECT_EQ(line, long_line);
  ASSERT_TRUE(r->next(line));
  EXPECT_EQ(line, "b");
  EXPECT_EQ(r->line_number(), 3u);
  EXPECT_FALSE(r->next(line));
}

TEST(LineReader, GunzipsGzFilesToTheSameLines) {
  auto plain = line_reader::open(fixtures + "loaders_retail.csv");
  auto gz = line_reader::open(fixtures + "loaders_retail.csv.gz");
  ASSERT_TRUE(plain.ok() && gz.ok());
  std::string_view a, b;
  std::size_t n = 0;
  while (plain->next(a)) {
    std::string copy(a);
    ASSERT_TRUE(gz->next(b));
    EXPECT_EQ(copy, b);
    ++n;
  }
  EXPECT_FALSE(gz->next(b));
  EXPECT_EQ(n, 7u);
}

TEST(LineReader, TruncatedGzIsAnIoError) {
  std::ifstream in(fixtures + "loaders_retail.csv.gz", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 100u);
  auto path = temp_file("truncated.csv.gz", bytes.substr(0, bytes.size() / 2));
  dataset ds;
  auto rep = load_events(path, data_format::online_retail, ds);
  ASSERT_FALSE(rep.ok());
  EXPECT_EQ(rep.err().code, errc::io_error);
  EXPECT_TRUE(contains(rep.err().message, "truncated.csv.gz")) << rep.err().message;
}

TEST(LineReader, MissingFileIsAnIoErrorNamingThePath) {
  for (std::string path : {"/nonexistent/dir/file.csv", "/nonexistent/dir/file.csv.gz"}) {
    auto r = line_reader::open(path);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::io_error);
    EXPECT_TRUE(contains(r.err().message, path)) << r.err().message;
  }
}

TEST(CsvSplitter, HandlesQuotesEscapesAndEmptyFields) {
  csv_splitter sp;
  ASSERT_TRUE(sp.split(R"(a,"b,c","say ""hi""",,"")"));
  ASSERT_EQ(sp.size(), 5u);
  EXPECT_EQ(sp[0], "a");
  EXPECT_EQ(sp[1], "b,c");
  EXPECT_EQ(sp[2], "say \"hi\"");
  EXPECT_EQ(sp[3], "");
  EXPECT_EQ(sp[4], "");
  ASSERT_TRUE(sp.split("x,"));
  EXPECT_EQ(sp.fields(), (std::vector<std::string_view>{"x", ""}));
  ASSERT_TRUE(sp.split(""));
  EXPECT_EQ(sp.size(), 1u);
  // Two escaped fields on one line must not overwrite each other.
  ASSERT_TRUE(sp.split(R"("a""b","c""d")"));
  EXPECT_EQ(sp[0], "a\"b");
  EXPECT_EQ(sp[1], "c\"d");
  EXPECT_FALSE(sp.split(R"(a,"unterminated)"));
  EXPECT_FALSE(sp.split(R"("closed"junk,b)"));
}

TEST(DataFormat, NamesRoundTrip) {
  for (auto f : {data_format::movielens, data_format::ml_csv, data_format::ml1m,
                 data_format::events, data_format::online_retail}) {
    auto back = parse_data_format(to_string(f));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, f);
  }
  EXPECT_EQ(parse_data_format("csv"), data_format::ml_csv);
  EXPECT_EQ(parse_data_format("online-retail"), data_format::online_retail);
  EXPECT_FALSE(parse_data_format("parquet").has_value());
}

TEST(IsoDateTime, ParsesUtcAndOffsets) {
  EXPECT_EQ(parse_iso_datetime("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_iso_datetime("2024-01-02T03:04:05Z"), 1704164645);
  EXPECT_EQ(parse_iso_datetime("2024-01-02 03:04:05"), 1704164645);
  EXPECT_EQ(parse_iso_datetime("2024-01-02T04:04:05+01:00"), 1704164645);
  EXPECT_EQ(parse_iso_datetime("2000-02-29T00:00"), 951782400);
  EXPECT_FALSE(parse_iso_datetime("2001-02-29T00:00:00").has_value());
  EXPECT_FALSE(parse_iso_datetime("2024-13-01T00:00:00").has_value());
  EXPECT_FALSE(parse_iso_datetime("2024-01-01T24:00:00").has_value());
  EXPECT_FALSE(parse_iso_datetime("2024-01-01").has_value());
  EXPECT_FALSE(parse_iso_datetime("2024-01-01T00:00:00Zjunk").has_value());
}

// ---- event loaders on fixtures ------------------------------------------------------

TEST(LoadEvents, MovieLensUData) {
  dataset ds;
  ds.scale = {0.0f, 10.0f};
  auto rep = load_events(fixtures + "loaders_u.data", data_format::movielens, ds);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  EXPECT_EQ(rep->lines, 4u); // the blank line is not a data line
  EXPECT_EQ(rep->accepted, 4u);
  EXPECT_EQ(rep->skipped, 0u);
  ASSERT_EQ(ds.events.size(), 4u);
  EXPECT_EQ(ds.users.size(), 3u);
  EXPECT_EQ(ds.items.size(), 3u);
  EXPECT_EQ(ds.scale.min, 1.0f);
  EXPECT_EQ(ds.scale.max, 5.0f);
  const event& e = ds.events[2];
  EXPECT_EQ(ds.users.external(e.user), "1");
  EXPECT_EQ(ds.items.external(e.item), "20");
  EXPECT_EQ(e.value, 5.0f);
  EXPECT_EQ(e.timestamp, 881250951);
  EXPECT_EQ(e.type, event_type::rating);
  EXPECT_EQ(ds.events[0].user, ds.events[2].user);
  EXPECT_EQ(ds.events[0].item, ds.events[1].item);
  EXPECT_EQ(ds.events[3].value, 1.0f);
}

TEST(LoadEvents, MovieLensCsvWithCrLfAndHalfStars) {
  dataset ds;
  auto rep = load_events(fixtures + "loaders_ratings.csv", data_format::ml_csv, ds);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  EXPECT_EQ(rep->lines, 3u);
  EXPECT_EQ(rep->accepted, 3u);
  EXPECT_EQ(ds.scale.min, 0.5f);
  EXPECT_EQ(ds.scale.max, 5.0f);
  ASSERT_EQ(ds.events.size(), 3u);
  EXPECT_EQ(ds.events[1].value, 0.5f);
  EXPECT_EQ(ds.events[1].timestamp, 964981247);
  EXPECT_EQ(ds.items.external(ds.events[1].item), "3");
  EXPECT_EQ(ds.events[2].value, 3.5f);
  EXPECT_EQ(ds.users.size(), 2u);
}

TEST(LoadEvents, Ml1mWithOptionalTimestamp) {
  dataset ds;
  auto rep = load_events(fixtures + "loaders_ratings.dat", data_format::ml1m, ds);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  ASSERT_EQ(ds.events.size(), 3u);
  EXPECT_EQ(ds.items.external(ds.events[0].item), "1193");
  EXPECT_EQ(ds.events[0].timestamp, 978300760);
  EXPECT_EQ(ds.events[1].value, 3.0f);
  EXPECT_EQ(ds.events[2].timestamp, 0);
  EXPECT_EQ(ds.events[2].item, ds.events[0].item);
}

TEST(LoadEvents, EventsCsvWithContextsAndIsoTimes) {
  dataset ds;
  auto rep = load_events(fixtures + "loaders_events.csv", data_format::events, ds);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  EXPECT_EQ(rep->accepted, 5u);
  ASSERT_EQ(ds.events.size(), 5u);
  EXPECT_EQ(ds.users.size(), 3u);
  EXPECT_EQ(ds.items.size(), 3u);
  EXPECT_EQ(ds.items.external(2), "sku,3");
  EXPECT_EQ(ds.devices.size(), 3u);   // "", mobile, desktop
  EXPECT_EQ(ds.locations.size(), 3u); // "", berlin, paris
  struct want {
    const char *user, *item;
    event_type type;
    float value;
    std::int64_t ts;
    const char *device, *location;
  };
  const want w[] = {
      {"alice", "sku-1", event_type::view, 1, 1700000000, "mobile", "berlin"},
      {"bob", "sku-2", event_type::purchase, 2, 1704164645, "desktop", "paris"},
      {"alice", "sku,3", event_type::cart, 1, 1704153600, "mobile", ""},
      {"carol", "sku-1", event_type::rating, 4.5f, 0, "", "berlin"},
      {"bob", "sku-1", event_type::cancel, 1, 1700000100, "desktop", "paris"},
  };
  for (std::size_t k = 0; k < 5; ++k) {
    const event& e = ds.events[k];
    SCOPED_TRACE(k);
    EXPECT_EQ(ds.users.external(e.user), w[k].user);
    EXPECT_EQ(ds.items.external(e.item), w[k].item);
    EXPECT_EQ(e.type, w[k].type);
    EXPECT_EQ(e.value, w[k].value);
    EXPECT_EQ(e.timestamp, w[k].ts);
    EXPECT_EQ(ds.devices.external(e.device), w[k].device);
    EXPECT_EQ(ds.locations.external(e.location), w[k].location);
  }
}

void check_retail_fixture(const std::string& path) {
  dataset ds;
  auto rep = load_events(path, data_format::online_retail, ds);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  EXPECT_EQ(rep->lines, 6u);
  EXPECT_EQ(rep->accepted, 5u);
  EXPECT_EQ(rep->ignored, 1u); // the line without CustomerID
  EXPECT_EQ(rep->skipped, 0u);
  ASSERT_EQ(ds.events.size(), 5u);
  EXPECT_EQ(ds.users.size(), 3u);
  EXPECT_EQ(ds.users.external(2), "33333"); // "33333.0" normalised
  EXPECT_EQ(ds.items.size(), 4u);           // the ignored line's item is not interned
  EXPECT_FALSE(ds.items.find("10004").has_value());
  const event& first = ds.events[0];
  EXPECT_EQ(first.type, event_type::purchase);
  EXPECT_EQ(first.value, 6.0f);
  EXPECT_EQ(first.timestamp, 1291191960); // 2010-12-01 08:26:00 UTC
  EXPECT_EQ(ds.locations.external(first.location), "United Kingdom");
  const event& cancel = ds.events[3];
  EXPECT_EQ(cancel.type, event_type::cancel);
  EXPECT_EQ(cancel.value, 2.0f);
  EXPECT_EQ(cancel.timestamp, 1291196460);
  EXPECT_EQ(ds.users.external(cancel.user), "22222");
  EXPECT_EQ(ds.items.external(cancel.item), "10001A");
  EXPECT_EQ(ds.locations.external(cancel.location), "EIRE");
  auto frame = ds.items.find("10003");
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(ds.item_meta.at(*frame).title, "PHOTO FRAME 7\" SQUARE");
  EXPECT_EQ(ds.item_meta.at(*frame).text, "PHOTO FRAME 7\" SQUARE");
  auto clock = ds.items.find("10005");
  ASSERT_TRUE(clock.has_value());
  EXPECT_EQ(ds.item_meta.at(*clock).title, "ALARM CLOCK, PINK");
}

TEST(LoadEvents, OnlineRetailFixture) {
  check_retail_fixture(fixtures + "loaders_retail.csv");
}

TEST(LoadEvents, OnlineRetailFixtureGzipped) {
  check_retail_fixture(fixtures + "loaders_retail.csv.gz");
}

// ---- errors
// -----------------------------------------------------------------------------

struct bad_case {
  data_format fmt;
  std::string content;
  errc code;
  std::string line_ref; // "file:line"-suffix expected in the message
  std::string field;    // field named in the message ("" for column-count errors)
};

TEST(LoadEvents, EveryErrorNamesFileLineAndField) {
  const std::string ev = "user,item,type,value,timestamp\n";
  const std::string ml = "userId,movieId,rating,timestamp\n";
  const std::vector<bad_case> cases = {
      {data_format::movielens, "1\t2\t3\t4\n1\t2\t3\n", errc::parse_error,
       ":2: ", "columns"},
      {data_format::movielens, "1\t2\tabc\t4\n", errc::parse_error,
       ":1: ", "field 'rating'"},
      {data_format::movielens, "1\t2\t6\t4\n", errc::out_of_range,
       ":1: ", "field 'rating'"},
      {data_format::movielens, "1\t2\t3\t12x\n", errc::parse_error,
       ":1: ", "field 'timestamp'"},
      {data_format::movielens, "\t2\t3\t4\n", errc::parse_error, ":1: ", "field 'user'"},
      {data_format::ml_csv, ml + "1,2,0.25,5\n", errc::out_of_range,
       ":2: ", "field 'rating'"},
      {data_format::ml_csv, ml + "1,,3,5\n", errc::parse_error,
       ":2: ", "field 'movieId'"},
      {data_format::ml_csv, "user,movie,rating\n", errc::parse_error, ":1: ", "header"},
      {data_format::ml1m, "1::2::3::4::5\n", errc::parse_error, ":1: ", "columns"},
      {data_format::events, ev + "a,b,view,1,1\na,b,wink,1,1\n", errc::parse_error,
       ":3: ", "field 'type'"},
      {data_format::events, ev + "a,b,view,one,1\n", errc::parse_error,
       ":2: ", "field 'value'"},
      {data_format::events, ev + "a,b,rating,9,1\n", errc::out_of_range,
       ":2: ", "field 'value'"},
      {data_format::events, ev + "a,b,view,1,2024-02-30T00:00:00\n", errc::parse_error,
       ":2: ", "field 'timestamp'"},
      {data_format::events, ev + "a, ,view,1,1\n", errc::parse_error,
       ":2: ", "field 'item'"},
      {data_format::events, ev + "a,b,view,1\n", errc::parse_error, ":2: ", "columns"},
      {data_format::events, ev + "a,\"b,view,1,1\n", errc::parse_error, ":2: ", "quotes"},
      {data_format::events, "user,item,value,timestamp\n", errc::parse_error,
       ":1: ", "'type'"},
      {data_format::online_retail,
       "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,"
       "Country\n"
       "1,A,x,2,2010-12-01 08:26:00,1.0,5,UK\n1,A,x,two,2010-12-01 08:26:00,1.0,5,UK\n",
       errc::parse_error, ":3: ", "field 'Quantity'"},
      {data_format::online_retail,
       "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,"
       "Country\n"
       "1,A,x,2,yesterday,1.0,5,UK\n",
       errc::parse_error, ":2: ", "field 'InvoiceDate'"},
  };
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const auto& c = cases[k];
    SCOPED_TRACE("case " + std::to_string(k) + ": " + c.content);
    const std::string name = "bad" + std::to_string(k) + ".txt";
    auto path = temp_file(name, c.content);
    dataset ds;
    auto rep = load_events(path, c.fmt, ds);
    ASSERT_FALSE(rep.ok());
    EXPECT_EQ(rep.err().code, c.code) << rep.err().message;
    EXPECT_TRUE(contains(rep.err().message, name + c.line_ref)) << rep.err().message;
    EXPECT_TRUE(contains(rep.err().message, c.field)) << rep.err().message;
  }
}

TEST(LoadEvents, StopsAtFirstBadLineKeepingAcceptedEvents) {
  auto path =
      temp_file("partial.tsv", "1\t1\t4\t10\n2\t2\t5\t11\n3\t3\tbad\t12\n4\t4\t1\t13\n");
  dataset ds;
  auto rep = load_events(path, data_format::movielens, ds);
  ASSERT_FALSE(rep.ok());
  EXPECT_TRUE(contains(rep.err().message, ":3: field 'rating'")) << rep.err().message;
  ASSERT_EQ(ds.events.size(), 2u); // lines 1-2 kept, line 4 never read
  EXPECT_EQ(ds.users.size(), 2u);
  EXPECT_FALSE(ds.users.find("3").has_value()); // the bad line interned nothing
}

TEST(LoadEvents, SkipBadLinesCountsAndCapsProblems) {
  std::string content = "user,item,type,value,timestamp\n";
  for (int k = 0; k < 20; ++k) {
    content += "u" + std::to_string(k) + ",i,view,1,1\n";
    content += "u" + std::to_string(k) + ",i,blink,1,1\n"; // bad type
  }
  content += ",i,view,1,1\n"; // empty user
  auto path = temp_file("skip.csv", content);
  dataset ds;
  load_options opt;
  opt.skip_bad_lines = true;
  opt.max_problems = 5;
  auto rep = load_events(path, data_format::events, ds, opt);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  EXPECT_EQ(rep->lines, 41u);
  EXPECT_EQ(rep->accepted, 20u);
  EXPECT_EQ(rep->skipped, 21u);
  ASSERT_EQ(rep->problems.size(), 5u);
  EXPECT_TRUE(contains(rep->problems[0], "skip.csv:3: field 'type'")) << rep->problems[0];
  EXPECT_TRUE(contains(rep->problems[4], "skip.csv:11: field 'type'"))
      << rep->problems[4];
  EXPECT_EQ(ds.events.size(), 20u);
  EXPECT_EQ(ds.users.size(), 20u);
}

TEST(LoadEvents, ExplicitScaleOverridesTheFormat) {
  dataset ds;
  load_options opt;
  opt.scale = rating_scale{1.0f, 3.0f};
  auto rep = load_events(fixtures + "loaders_u.data", data_format::movielens, ds, opt);
  ASSERT_FALSE(rep.ok()); // the first line's rating 4 is off the 1..3 scale
  EXPECT_EQ(rep.err().code, errc::out_of_range);
  EXPECT_TRUE(contains(rep.err().message, "loaders_u.data:1: field 'rating'"));
  EXPECT_EQ(ds.scale.max, 3.0f);
}

TEST(LoadEvents, MissingFileIsAnIoError) {
  dataset ds;
  auto rep = load_events("/nonexistent/u.data", data_format::movielens, ds);
  ASSERT_FALSE(rep.ok());
  EXPECT_EQ(rep.err().code, errc::io_error);
  EXPECT_TRUE(contains(rep.err().message, "/nonexistent/u.data"));
}

// ---- writing: round trip
// ------------------------------------------------------------------

TEST(WriteEvents, RoundTripsIdsTypesValuesTimesAndContexts) {
  dataset ds;
  ds.users.intern("plain");
  ds.users.intern("with,comma");
  ds.users.intern("with \"quote\"");
  ds.items.intern("x");
  ds.items.intern("y");
  ds.devices.intern("phone, old");
  ds.locations.intern("Zürich");
  ds.events = {
      {0, 0, 1.0f, event_type::view, 1, 0, 1},
      {1, 1, 0.1f, event_type::click, 0, 1, 1700000000},
      {2, 0, 3.5f, event_type::rating, 1, 1, 0},
      {1, 0, 123456.789f, event_type::purchase, 0, 0, 4102444800},
      {0, 1, 1e-7f, event_type::cancel, 1, 1, 42},
  };
  auto path = ::testing::TempDir() + "loaders_test_roundtrip.csv";
  auto st = write_events_csv(ds, path);
  ASSERT_TRUE(st.ok()) << st.err().message;
  dataset back;
  auto rep = load_events(path, data_format::events, back);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  ASSERT_EQ(back.events.size(), ds.events.size());
  for (std::size_t k = 0; k < ds.events.size(); ++k) {
    const event &a = ds.events[k], &b = back.events[k];
    SCOPED_TRACE(k);
    EXPECT_EQ(ds.users.external(a.user), back.users.external(b.user));
    EXPECT_EQ(ds.items.external(a.item), back.items.external(b.item));
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.value, b.value); // exact, not approximate
    EXPECT_EQ(a.timestamp, b.timestamp);
    EXPECT_EQ(ds.devices.external(a.device), back.devices.external(b.device));
    EXPECT_EQ(ds.locations.external(a.location), back.locations.external(b.location));
  }
}

TEST(WriteEvents, RejectsIdsWithLineBreaks) {
  dataset ds;
  ds.users.intern("two\nlines");
  ds.items.intern("x");
  ds.events = {{0, 0, 1.0f, event_type::view, 0, 0, 0}};
  auto st = write_events_csv(ds, ::testing::TempDir() + "loaders_test_bad_write.csv");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::invalid_argument);
  auto unwritable = write_events_csv(ds, "/nonexistent/dir/out.csv");
  ASSERT_FALSE(unwritable.ok());
  EXPECT_EQ(unwritable.err().code, errc::io_error);
}

// ---- side information
// -------------------------------------------------------------------

TEST(ItemAttributes, UItemWithBuiltInGenreNames) {
  dataset ds;
  auto rep = load_item_attributes(fixtures + "loaders_u.item", ds);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  EXPECT_EQ(rep->accepted, 3u);
  ASSERT_EQ(ds.items.size(), 3u);
  ASSERT_EQ(ds.item_meta.size(), 3u);
  EXPECT_EQ(ds.item_meta[0].title, "Harbour Lights (1994)");
  EXPECT_EQ(ds.item_meta[0].genres,
            (std::vector<std::string>{"Animation", "Children's", "Comedy"}));
  EXPECT_EQ(ds.item_meta[1].title, "Night Train, Again (1996)");
  EXPECT_EQ(ds.item_meta[1].genres,
            (std::vector<std::string>{"Action", "Adventure", "Thriller"}));
  EXPECT_EQ(ds.item_meta[2].genres, (std::vector<std::string>{"Western"}));
}

TEST(ItemAttributes, UItemTakesGenreNamesFromUGenre) {
  std::string dir = ::testing::TempDir() + "loaders_test_genre_dir";
  std::string mk = "mkdir -p '" + dir + "'";
  ASSERT_EQ(std::system(mk.c_str()), 0);
  {
    std::ofstream(dir + "/u.genre") << "Jazz|1\nBlues|0\nFolk|2\n\n";
    std::ofstream(dir + "/u.item") << "7|Song|||url|1|0|1\n8|Other|||url|0|1|0\n";
  }
  dataset ds;
  auto rep = load_item_attributes(dir + "/u.item", ds);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  EXPECT_EQ(ds.item_meta[0].genres, (std::vector<std::string>{"Blues", "Folk"}));
  EXPECT_EQ(ds.item_meta[1].genres, (std::vector<std::string>{"Jazz"}));
  std::ofstream(dir + "/u.item") << "9|Bad|||url|1|2|0\n";
  auto bad = load_item_attributes(dir + "/u.item", ds);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(contains(bad.err().message, "u.item:1: field 'genre Jazz'"))
      << bad.err().message;
}

TEST(ItemAttributes, MoviesCsvWithQuotedTitles) {
  dataset ds;
  ds.items.intern("11"); // known from ratings: keeps its index
  auto rep = load_item_attributes(fixtures + "loaders_movies.csv", ds);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  EXPECT_EQ(rep->accepted, 3u);
  ASSERT_EQ(ds.items.size(), 3u);
  EXPECT_EQ(ds.items.external(0), "11");
  EXPECT_EQ(ds.item_meta[0].title, "Night Train, Again (1996)");
  EXPECT_EQ(ds.item_meta[0].genres, (std::vector<std::string>{"Drama", "Romance"}));
  auto i1 = ds.items.find("1");
  ASSERT_TRUE(i1.has_value());
  EXPECT_EQ(ds.item_meta[*i1].genres,
            (std::vector<std::string>{"Adventure", "Animation", "Comedy"}));
  auto i99 = ds.items.find("99");
  ASSERT_TRUE(i99.has_value());
  EXPECT_EQ(ds.item_meta[*i99].title, "Say \"Hello\", World (2001)");
  EXPECT_TRUE(ds.item_meta[*i99].genres.empty());
}

TEST(ItemAttributes, ItemsCsvRoundTrip) {
  dataset ds;
  ds.items.intern("a");
  ds.items.intern("b,c");
  auto& a = ds.item_meta_at(0);
  a.title = "Title, with comma";
  a.genres = {"books", "sale"};
  a.tags = {"brand x"};
  a.text = "some \"quoted\" words";
  ds.item_meta_at(1).genres = {"toys"};
  auto path = ::testing::TempDir() + "loaders_test_items.csv";
  auto st = write_items_csv(ds, path);
  ASSERT_TRUE(st.ok()) << st.err().message;
  dataset back;
  auto rep = load_item_attributes(path, back);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  ASSERT_EQ(back.items.size(), 2u);
  for (index_t i = 0; i < 2; ++i) {
    EXPECT_EQ(back.items.external(i), ds.items.external(i));
    EXPECT_EQ(back.item_meta[i].title, ds.item_meta[i].title);
    EXPECT_EQ(back.item_meta[i].genres, ds.item_meta[i].genres);
    EXPECT_EQ(back.item_meta[i].tags, ds.item_meta[i].tags);
    EXPECT_EQ(back.item_meta[i].text, ds.item_meta[i].text);
  }
}

TEST(ItemAttributes, UnrecognisedFormatIsAParseError) {
  auto path = temp_file("items.bin", "just some words\n");
  dataset ds;
  auto rep = load_item_attributes(path, ds);
  ASSERT_FALSE(rep.ok());
  EXPECT_EQ(rep.err().code, errc::parse_error);
  EXPECT_TRUE(contains(rep.err().message, "items.bin:1:"));
}

TEST(UserAttributes, UUser) {
  dataset ds;
  auto rep = load_user_attributes(fixtures + "loaders_u.user", ds);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  EXPECT_EQ(rep->accepted, 3u);
  ASSERT_EQ(ds.user_meta.size(), 3u);
  using attrs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(
      ds.user_meta[2].attributes,
      (attrs{
          {"age", "19"}, {"gender", "F"}, {"occupation", "student"}, {"zip", "00100"}}));
  auto bad = temp_file("u.user", "1|24|M|technician|85711\n2|old|F|other|1\n");
  auto r2 = load_user_attributes(bad, ds);
  ASSERT_FALSE(r2.ok());
  EXPECT_TRUE(contains(r2.err().message, "u.user:2: field 'age'")) << r2.err().message;
}

TEST(UserAttributes, UsersCsvRoundTrip) {
  dataset ds;
  ds.users.intern("u1");
  ds.users.intern("u2");
  ds.user_meta_at(0).attributes = {{"age", "25-34"}, {"region", "north, upper"}};
  ds.user_meta_at(1).attributes = {{"region", "south"}};
  auto path = ::testing::TempDir() + "loaders_test_users.csv";
  auto st = write_users_csv(ds, path);
  ASSERT_TRUE(st.ok()) << st.err().message;
  dataset back;
  auto rep = load_user_attributes(path, back);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  ASSERT_EQ(back.user_meta.size(), 2u);
  EXPECT_EQ(back.user_meta[0].attributes, ds.user_meta[0].attributes);
  EXPECT_EQ(back.user_meta[1].attributes, ds.user_meta[1].attributes);
}

TEST(Tags, AppendsEveryApplication) {
  dataset ds;
  auto rep = load_tags(fixtures + "loaders_tags.csv", ds);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  EXPECT_EQ(rep->accepted, 4u);
  EXPECT_EQ(ds.users.size(), 0u);
  auto m = ds.items.find("60756");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(ds.item_meta[*m].tags,
            (std::vector<std::string>{"funny", "very quotable", "funny"}));
  auto a = ds.items.find("4552");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(ds.item_meta[*a].tags, (std::vector<std::string>{"\"artsy\""}));
}

// ---- the real data sets
// -----------------------------------------------------------------

TEST(RealData, Ml100kU1BaseFast) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  dataset ds;
  stopwatch sw;
  auto rep = load_events(real("ml-100k/u1.base"), data_format::movielens, ds);
  const double secs = sw.cpu(), wall = sw.wall();
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  EXPECT_EQ(rep->lines, 80000u);
  EXPECT_EQ(rep->accepted, 80000u);
  EXPECT_EQ(ds.events.size(), 80000u);
  EXPECT_EQ(ds.users.size(), 943u);
  EXPECT_EQ(ds.items.size(), 1650u);
  std::printf("[ figures ] ml-100k/u1.base: 80000 ratings in %.3f s cpu, %.3f s wall\n",
              secs, wall);
}

TEST(RealData, Ml100kFullWithSideInformation) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u.data", "ml-100k/u.item", "ml-100k/u.user");
  dataset ds;
  stopwatch sw;
  auto rep = load_events(real("ml-100k/u.data"), data_format::movielens, ds);
  const double secs = sw.cpu(), wall = sw.wall();
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  std::printf("[ figures ] ml-100k/u.data: 100000 ratings in %.3f s cpu, %.3f s wall\n",
              secs, wall);
  EXPECT_EQ(ds.events.size(), 100000u);
  EXPECT_EQ(ds.users.size(), 943u);
  EXPECT_EQ(ds.items.size(), 1682u);
  auto items = load_item_attributes(real("ml-100k/u.item"), ds);
  ASSERT_TRUE(items.ok()) << items.err().message;
  EXPECT_EQ(items->accepted, 1682u);
  EXPECT_EQ(ds.items.size(), 1682u); // no new items
  auto toy = ds.items.find("1");
  ASSERT_TRUE(toy.has_value());
  EXPECT_EQ(ds.item_meta[*toy].title, "Toy Story (1995)");
  EXPECT_EQ(ds.item_meta[*toy].genres,
            (std::vector<std::string>{"Animation", "Children's", "Comedy"}));
  auto users = load_user_attributes(real("ml-100k/u.user"), ds);
  ASSERT_TRUE(users.ok()) << users.err().message;
  EXPECT_EQ(users->accepted, 943u);
  EXPECT_EQ(ds.users.size(), 943u);
  auto u1 = ds.users.find("1");
  ASSERT_TRUE(u1.has_value());
  EXPECT_EQ(ds.user_meta[*u1].attributes.at(2).second, "technician");
}

TEST(RealData, MlLatestSmall) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-latest-small/ratings.csv", "ml-latest-small/movies.csv",
                             "ml-latest-small/tags.csv");
  dataset ds;
  auto rep = load_events(real("ml-latest-small/ratings.csv"), data_format::ml_csv, ds);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  EXPECT_EQ(rep->accepted, 100836u);
  EXPECT_EQ(ds.users.size(), 610u);
  EXPECT_EQ(ds.items.size(), 9724u);
  EXPECT_EQ(ds.scale.min, 0.5f);
  auto movies = load_item_attributes(real("ml-latest-small/movies.csv"), ds);
  ASSERT_TRUE(movies.ok()) << movies.err().message;
  EXPECT_EQ(movies->accepted, 9742u);
  EXPECT_EQ(ds.items.size(), 9742u); // 18 movies without ratings are added
  auto pres = ds.items.find("11");
  ASSERT_TRUE(pres.has_value());
  EXPECT_EQ(ds.item_meta[*pres].title, "American President, The (1995)");
  auto tags = load_tags(real("ml-latest-small/tags.csv"), ds);
  ASSERT_TRUE(tags.ok()) << tags.err().message;
  EXPECT_EQ(tags->accepted, 3683u);
  std::size_t tagged = 0, applications = 0;
  for (const auto& info : ds.item_meta) {
    tagged += !info.tags.empty();
    applications += info.tags.size();
  }
  EXPECT_EQ(applications, 3683u);
  EXPECT_GT(tagged, 1000u);
}

TEST(RealData, OnlineRetailGzFast) {
  SHARDREC_SKIP_WITHOUT_DATA("online-retail/online_retail.csv.gz");
  dataset ds;
  stopwatch sw;
  auto rep = load_events(real("online-retail/online_retail.csv.gz"),
                         data_format::online_retail, ds);
  const double secs = sw.cpu(), wall = sw.wall();
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  std::printf(
      "[ figures ] online_retail.csv.gz: 541909 lines in %.3f s cpu, %.3f s wall\n", secs,
      wall);
  EXPECT_EQ(rep->lines, 541909u);
  EXPECT_EQ(rep->ignored, 135080u);
  EXPECT_EQ(rep->skipped, 0u);
  EXPECT_EQ(rep->accepted, 541909u - 135080u);
  std::size_t cancels = 0, purchases = 0;
  for (const auto& e : ds.events) {
    cancels += e.type == event_type::cancel;
    purchases += e.type == event_type::purchase;
    ASSERT_GT(e.value, 0.0f);
  }
  EXPECT_EQ(cancels, 8905u);
  EXPECT_EQ(purchases, 397924u);
  EXPECT_EQ(ds.users.size(), 4372u);
  EXPECT_EQ(ds.items.size(), 3684u);
  EXPECT_EQ(ds.locations.size(), 38u); // 37 countries + unknown
  auto [lo, hi] = std::minmax_element(
      ds.events.begin(), ds.events.end(),
      [](const event& a, const event& b) { return a.timestamp < b.timestamp; });
  EXPECT_EQ(lo->timestamp, 1291191960); // 2010-12-01 08:26 UTC
  EXPECT_EQ(hi->timestamp,
            *parse_iso_datetime("2011-12-09 12:50:00")); // the last invoice
  auto heart = ds.items.find("85123A");
  ASSERT_TRUE(heart.has_value());
  EXPECT_EQ(ds.item_meta[*heart].text, "WHITE HANGING HEART T-LIGHT HOLDER");
}

} // namespace
} // namespace shardrec::core
