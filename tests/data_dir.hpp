// The public data sets (MovieLens 100K, ml-latest-small, Online Retail) live
// outside the repository, in the folder named by the SHARDREC_DATA_DIR compile
// definition (../shared/data by default). A test that reads them begins with
//
//   SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base", "ml-100k/u1.test");
//
// which skips the test (GTEST_SKIP) with a message naming the first missing
// file, so a checkout without the data runs every other test and aborts none.
// The macro returns from the enclosing function: use it in a TEST body or in
// a fixture's SetUp, never in a helper (the test would go on without data).
#pragma once

#include <fstream>
#include <initializer_list>
#include <string>

#include <gtest/gtest.h>

#ifndef SHARDREC_DATA_DIR
#error "tests/data_dir.hpp needs the SHARDREC_DATA_DIR compile definition"
#endif

namespace shardrec::test_data {

// The data folder joined with `rel`, a path relative to it ("ml-100k/u.data").
inline std::string path(const std::string& rel) {
  return std::string(SHARDREC_DATA_DIR) + "/" + rel;
}

// "" when every file in `rels` can be opened for reading; otherwise a message
// naming the first one that cannot.
inline std::string missing(std::initializer_list<const char*> rels) {
  for (const char* rel : rels) {
    const std::string p = path(rel);
    if (!std::ifstream(p).good())
      return "data set file missing: " + p + " (SHARDREC_DATA_DIR=" + SHARDREC_DATA_DIR
             + "); skipping this test";
  }
  return "";
}

} // namespace shardrec::test_data

#define SHARDREC_SKIP_WITHOUT_DATA(...)                                                  \
  do {                                                                                   \
    const std::string shardrec_missing_data_ =                                           \
        ::shardrec::test_data::missing({__VA_ARGS__});                                   \
    if (!shardrec_missing_data_.empty())                                                 \
      GTEST_SKIP() << shardrec_missing_data_;                                            \
  } while (false)
