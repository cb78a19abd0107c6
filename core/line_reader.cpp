#include "core/line_reader.hpp"

#include <cerrno>
#include <cstring>
#include <utility>

#include <zlib.h>

namespace shardrec::core {

namespace {

constexpr std::size_t initial_buffer = std::size_t{1} << 18;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

} // namespace

result<line_reader> line_reader::open(const std::string& path) {
  line_reader r;
  r.path_ = path;
  errno = 0;
  if (ends_with(path, ".gz")) {
    r.gz_ = gzopen(path.c_str(), "rb");
    if (r.gz_ == nullptr)
      return make_error(errc::io_error,
                        "cannot open '" + path
                            + "': " + (errno ? std::strerror(errno) : "zlib error"));
    gzbuffer(r.gz_, 1u << 17);
  } else {
    r.file_ = std::fopen(path.c_str(), "rb");
    if (r.file_ == nullptr)
      return make_error(errc::io_error,
                        "cannot open '" + path + "': " + std::strerror(errno));
  }
  r.buf_.resize(initial_buffer);
  return r;
}

line_reader::line_reader(line_reader&& other) noexcept {
  *this = std::move(other);
}

line_reader& line_reader::operator=(line_reader&& other) noexcept {
  if (this != &other) {
    close();
    path_ = std::move(other.path_);
    file_ = std::exchange(other.file_, nullptr);
    gz_ = std::exchange(other.gz_, nullptr);
    buf_ = std::move(other.buf_);
    begin_ = other.begin_;
    end_ = other.end_;
    eof_ = other.eof_;
    line_no_ = other.line_no_;
    status_ = std::move(other.status_);
  }
  return *this;
}

line_reader::~line_reader() {
  close();
}

void line_reader::close() {
  if (file_ != nullptr)
    std::fclose(file_);
  if (gz_ != nullptr)
    gzclose(gz_);
  file_ = nullptr;
  gz_ = nullptr;
}

bool line_reader::fill() {
  char* dst = buf_.data() + end_;
  std::size_t room = buf_.size() - end_;
  if (gz_ != nullptr) {
    int n = gzread(gz_, dst, static_cast<unsigned>(room));
    int code = Z_OK;
    const char* msg = n <= 0 ? gzerror(gz_, &code) : nullptr;
    // A truncated stream ends with n == 0 and Z_BUF_ERROR, not with n < 0.
    if (n < 0 || code != Z_OK) {
      status_ = make_error(errc::io_error, "cannot read '" + path_ + "' near line "
                                               + std::to_string(line_no_ + 1) + ": "
                                               + (msg ? msg : "zlib error"));
      return false;
    }
    end_ += static_cast<std::size_t>(n);
    return n > 0;
  }
  if (file_ == nullptr)
    return false;
  std::size_t n = std::fread(dst, 1, room, file_);
  if (n == 0 && std::ferror(file_)) {
    status_ = make_error(errc::io_error, "cannot read '" + path_ + "' near line "
                                             + std::to_string(line_no_ + 1));
    return false;
  }
  end_ += n;
  return n > 0;
}

bool line_reader::next(std::string_view& line) {
  if (!status_.ok())
    return false;
  std::size_t scanned = 0; // bytes after begin_ known to hold no '\n'
  for (;;) {
    const char* base = buf_.data();
    const void* nl = end_ > begin_ + scanned ? std::memchr(base + begin_ + scanned, '\n',
                                                           end_ - begin_ - scanned)
                                             : nullptr;
    if (nl != nullptr) {
      auto pos = static_cast<std::size_t>(static_cast<const char*>(nl) - base);
      line = std::string_view(base + begin_, pos - begin_);
      begin_ = pos + 1;
      break;
    }
    if (eof_) {
      if (begin_ == end_)
        return false;
      line = std::string_view(base + begin_, end_ - begin_);
      begin_ = end_;
      break;
    }
    scanned = end_ - begin_;
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, scanned);
      end_ = scanned;
      begin_ = 0;
    }
    if (end_ == buf_.size())
      buf_.resize(buf_.size() * 2);
    if (!fill()) {
      if (!status_.ok())
        return false;
      eof_ = true;
    }
  }
  if (!line.empty() && line.back() == '\r')
    line.remove_suffix(1);
  ++line_no_;
  if (line_no_ == 1 && line.substr(0, 3) == "\xEF\xBB\xBF")
    line.remove_prefix(3);
  return true;
}

bool csv_splitter::split(std::string_view line) {
  fields_.clear();
  scratch_.clear();
  scratch_.reserve(line.size()); // unescaped text never outgrows the line
  const std::size_t n = line.size();
  std::size_t i = 0;
  for (;;) {
    if (i < n && line[i] == '"') {
      ++i;
      const std::size_t start = i;
      const std::size_t scratch_start = scratch_.size();
      bool escaped = false;
      for (;;) {
        std::size_t q = line.find('"', i);
        if (q == std::string_view::npos)
          return false;
        if (q + 1 < n && line[q + 1] == '"') {
          if (!escaped)
            scratch_.append(line.substr(start, q + 1 - start));
          else
            scratch_.append(line.substr(i, q + 1 - i));
          escaped = true;
          i = q + 2;
          continue;
        }
        if (escaped) {
          scratch_.append(line.substr(i, q - i));
          fields_.emplace_back(scratch_.data() + scratch_start,
                               scratch_.size() - scratch_start);
        } else {
          fields_.push_back(line.substr(start, q - start));
        }
        i = q + 1;
        break;
      }
      if (i == n)
        return true;
      if (line[i] != sep_)
        return false;
      ++i;
    } else {
      std::size_t s = line.find(sep_, i);
      if (s == std::string_view::npos) {
        fields_.push_back(line.substr(i));
        return true;
      }
      fields_.push_back(line.substr(i, s - i));
      i = s + 1;
    }
  }
}

void split_plain(std::string_view line, std::string_view sep,
                 std::vector<std::string_view>& out) {
  out.clear();
  std::size_t i = 0;
  for (;;) {
    std::size_t s = line.find(sep, i);
    if (s == std::string_view::npos) {
      out.push_back(line.substr(i));
      return;
    }
    out.push_back(line.substr(i, s - i));
    i = s + sep.size();
  }
}

} // namespace shardrec::core
