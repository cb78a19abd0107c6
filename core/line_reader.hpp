// Line-oriented text input for the loaders: a buffered reader that gunzips
// files whose name ends in ".gz", and a CSV field splitter.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

struct gzFile_s; // zlib's handle type; zlib stays a private dependency

namespace shardrec::core {

// Reads a file one line at a time. Files named "*.gz" are decompressed on the
// fly (zlib); any other file is read as is. Line terminators "\n" and "\r\n"
// are stripped, a UTF-8 byte-order mark at the start of the file is dropped,
// and a last line without a terminator is still returned. Lines may be of any
// length. Move-only; owns the file handle.
class line_reader {
public:
  // Opens `path`. Fails with errc::io_error naming the path.
  static result<line_reader> open(const std::string& path);

  line_reader(line_reader&& other) noexcept;
  line_reader& operator=(line_reader&& other) noexcept;
  line_reader(const line_reader&) = delete;
  line_reader& operator=(const line_reader&) = delete;
  ~line_reader();

  // Sets `line` to the next line and returns true, or returns false at the
  // end of the file or on a read error (see status()). `line` stays valid
  // until the next call.
  bool next(std::string_view& line);

  // 1-based number of the line last returned by next(); 0 before the first.
  std::size_t line_number() const { return line_no_; }
  const std::string& path() const { return path_; }

  // Not ok if reading stopped on an I/O or decompression error rather than
  // at the end of the file.
  const status& read_status() const { return status_; }

private:
  line_reader() = default;
  void close();
  // Appends more bytes after end_; returns false at EOF or on error.
  bool fill();

  std::string path_;
  std::FILE* file_ = nullptr;
  gzFile_s* gz_ = nullptr;
  std::vector<char> buf_;
  std::size_t begin_ = 0; // first unread byte
  std::size_t end_ = 0;   // one past the last valid byte
  bool eof_ = false;
  std::size_t line_no_ = 0;
  status status_;
};

// Splits one CSV record (RFC 4180 quoting, the record on one line) into
// fields. A quoted field may hold the separator; "" inside quotes is one
// quote. Fields are views into the line or into internal scratch space and
// stay valid until the next split() on this object. Reuse one splitter per
// file: it then allocates nothing per line once warmed up.
class csv_splitter {
public:
  explicit csv_splitter(char sep = ',') : sep_(sep) {}

  // Returns false (fields() then undefined) if a quoted field is not closed
  // or a closing quote is followed by something other than the separator.
  bool split(std::string_view line);

  const std::vector<std::string_view>& fields() const { return fields_; }
  std::size_t size() const { return fields_.size(); }
  std::string_view operator[](std::size_t i) const { return fields_[i]; }

private:
  char sep_;
  std::vector<std::string_view> fields_;
  std::string scratch_;
};

// Splits `line` at every occurrence of `sep` (no quoting), appending the
// pieces to `out` after clearing it. Used for tab-, '|'- and "::"-separated
// MovieLens files.
void split_plain(std::string_view line, std::string_view sep,
                 std::vector<std::string_view>& out);

} // namespace shardrec::core
