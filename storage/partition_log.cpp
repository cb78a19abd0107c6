#include "storage/partition_log.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/files.hpp"
#include "storage/posix.hpp"

namespace shardrec::storage {

namespace fs = std::filesystem;

result<sync_mode> parse_sync_mode(std::string_view s) {
  if (s == "always")
    return sync_mode::always;
  if (s == "batch")
    return sync_mode::batch;
  if (s == "none")
    return sync_mode::none;
  return core::make_error(core::errc::invalid_argument,
                          "--sync: expected always, batch or none, got '" + std::string(s)
                              + "'");
}

const char* to_string(sync_mode m) {
  switch (m) {
    case sync_mode::always: return "always";
    case sync_mode::batch: return "batch";
    case sync_mode::none: return "none";
  }
  return "?";
}

namespace {

std::string segment_name(std::uint64_t first) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu.log", static_cast<unsigned long long>(first));
  return buf;
}

// The segments in `dir`, by first sequence number.
std::vector<std::pair<std::uint64_t, std::string>> list_segments(const std::string& dir) {
  std::vector<std::pair<std::uint64_t, std::string>> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto name = entry.path().filename().string();
    if (name.size() != 24 || name.compare(20, 4, ".log") != 0
        || !std::all_of(name.begin(), name.begin() + 20,
                        [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    std::uint64_t first = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + 20, first);
    if (ec != std::errc() || end != name.data() + 20)
      continue; // not a number we wrote (out of range): not ours
    out.emplace_back(first, entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

status cut_file(const std::string& path, std::uint64_t size) {
  if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0)
    return sys_error("cannot cut", path);
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return sys_error("cannot open", path);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0)
    return sys_error("cannot sync", path);
  return {};
}

} // namespace

result<partition_log> partition_log::open(const std::string& dir, std::uint64_t after,
                                          const replay_fn& fn, recovery* out,
                                          log_options opt) {
  if (auto st = make_dirs(dir); !st)
    return st.err();
  recovery rec;
  partition_log log;
  log.dir_ = dir;
  log.opt_ = opt;
  std::vector<std::pair<std::uint64_t, std::string>> segments;
  try {
    segments = list_segments(dir);
  } catch (const fs::filesystem_error& e) {
    return core::make_error(core::errc::io_error,
                            "cannot list log folder '" + dir + "': " + e.what());
  }
  std::uint64_t expected = 0; // next sequence number; 0: the first record sets it
  std::uint64_t first_seen = 0;
  bool cut = false;
  std::vector<std::uint64_t> kept;
  std::uint64_t last_size = 0;
  for (const auto& [first, path] : segments) {
    if (cut) {
      if (::unlink(path.c_str()) != 0)
        return sys_error("cannot remove", path);
      rec.notes.push_back("log segment '" + path
                          + "' removed: it follows a cut (its records are lost)");
      continue;
    }
    auto bytes = read_file(path);
    if (!bytes)
      return bytes.err();
    const std::string& b = *bytes;
    std::uint64_t off = 0;
    std::string problem;
    if (expected != 0 && first != expected)
      problem = "segment starts at record " + std::to_string(first) + " but record "
                + std::to_string(expected) + " was expected";
    while (problem.empty() && off < b.size()) {
      const std::uint64_t left = b.size() - off;
      if (left < header_bytes) {
        problem = "torn record header (" + std::to_string(left) + " bytes)";
        break;
      }
      const char* h = b.data() + off;
      const auto len = get_u32(h);
      const auto crc = get_u32(h + 4);
      const auto seq = get_u64(h + 8);
      const auto kind = static_cast<std::uint8_t>(h[16]);
      if (len > max_payload) {
        problem = "record length " + std::to_string(len) + " exceeds the limit";
        break;
      }
      if (left < header_bytes + len) {
        problem = "torn record (" + std::to_string(left - header_bytes) + " of "
                  + std::to_string(len) + " payload bytes)";
        break;
      }
      if (std::any_of(h + 17, h + 24, [](char c) { return c != 0; })
          || crc32(h + header_bytes, len, crc32(h + 8, 16)) != crc) {
        problem = "checksum mismatch (corrupt record)";
        break;
      }
      const auto want = expected != 0 ? expected : first;
      if (seq != want) {
        problem = "record " + std::to_string(seq) + " where record "
                  + std::to_string(want) + " was expected";
        break;
      }
      if (first_seen == 0)
        first_seen = seq;
      if (seq > after) {
        if (first_seen > after + 1)
          return core::make_error(
              core::errc::io_error,
              "log '" + dir + "' starts at record " + std::to_string(first_seen)
                  + " but the snapshot covers records up to " + std::to_string(after)
                  + ": records " + std::to_string(after + 1) + ".."
                  + std::to_string(first_seen - 1) + " are missing");
        if (auto st = fn(seq, kind, std::string_view(h + header_bytes, len)); !st)
          return st.err();
        ++rec.replayed;
      }
      expected = seq + 1;
      off += header_bytes + len;
    }
    if (!problem.empty()) {
      cut = true;
      if (off == 0) {
        // Nothing good in it: the segment goes (its name would no longer
        // match the records written next).
        rec.notes.push_back("log segment '" + path + "': " + problem
                            + " at offset 0; segment removed (" + std::to_string(b.size())
                            + " bytes dropped)");
        if (::unlink(path.c_str()) != 0)
          return sys_error("cannot remove", path);
        continue;
      }
      rec.notes.push_back("log segment '" + path + "': " + problem + " at offset "
                          + std::to_string(off) + "; cut there ("
                          + std::to_string(b.size() - off) + " bytes dropped)");
      if (auto st = cut_file(path, off); !st)
        return st.err();
    }
    kept.push_back(first);
    last_size = off;
  }
  // A log with segments but no record (e.g. only the empty segment started
  // after a snapshot) starts where its first segment's name says.
  if (first_seen == 0 && !kept.empty() && kept.front() > after + 1)
    return core::make_error(
        core::errc::io_error,
        "log '" + dir + "' starts at record " + std::to_string(kept.front())
            + " but the snapshot covers records up to " + std::to_string(after)
            + ": records " + std::to_string(after + 1) + ".."
            + std::to_string(kept.front() - 1) + " are missing");
  const std::uint64_t last = expected == 0 ? 0 : expected - 1;
  if (last < after) {
    // The snapshot covers everything the log holds: start over after it.
    for (auto first : kept) {
      const auto path = dir + "/" + segment_name(first);
      if (::unlink(path.c_str()) != 0)
        return sys_error("cannot remove", path);
    }
    kept.clear();
  }
  log.last_seq_ = std::max(last, after);
  log.firsts_ = kept;
  if (!kept.empty() && last_size < opt.segment_bytes) {
    log.active_ = dir + "/" + segment_name(kept.back());
    log.fd_ = ::open(log.active_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (log.fd_ < 0)
      return sys_error("cannot open", log.active_);
    log.active_bytes_ = last_size;
  } else if (auto st = log.start_segment(); !st) {
    return st.err();
  }
  rec.last_seq = log.last_seq_;
  if (out)
    *out = std::move(rec);
  return log;
}

partition_log::partition_log(partition_log&& o) noexcept {
  *this = std::move(o);
}

partition_log& partition_log::operator=(partition_log&& o) noexcept {
  if (this != &o) {
    close_fd();
    dir_ = std::move(o.dir_);
    opt_ = o.opt_;
    fd_ = std::exchange(o.fd_, -1);
    active_ = std::move(o.active_);
    active_bytes_ = o.active_bytes_;
    firsts_ = std::move(o.firsts_);
    last_seq_ = o.last_seq_;
    dirty_ = o.dirty_;
    dir_dirty_ = o.dir_dirty_;
    failed_ = std::move(o.failed_);
  }
  return *this;
}

partition_log::~partition_log() {
  close_fd();
}

void partition_log::close_fd() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

status partition_log::start_segment() {
  const auto first = last_seq_ + 1;
  const auto path = dir_ + "/" + segment_name(first);
  int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return sys_error("cannot create log segment", path);
  close_fd();
  fd_ = fd;
  active_ = path;
  active_bytes_ = 0;
  if (firsts_.empty() || firsts_.back() != first)
    firsts_.push_back(first);
  dir_dirty_ = true;
  return {};
}

result<std::uint64_t> partition_log::append(std::uint8_t kind, std::string_view payload) {
  if (!failed_.empty())
    return core::make_error(core::errc::io_error,
                            "log '" + dir_ + "' takes no more records: " + failed_
                                + "; restart the node");
  if (payload.size() > max_payload)
    return core::make_error(core::errc::invalid_argument,
                            "log record of " + std::to_string(payload.size())
                                + " bytes exceeds the limit");
  if (active_bytes_ >= opt_.segment_bytes) {
    // The finished segment must be durable before records go elsewhere.
    if (dirty_)
      if (auto st = sync(); !st)
        return st.err();
    if (auto st = start_segment(); !st)
      return st.err();
  }
  const auto seq = last_seq_ + 1;
  std::string rec(header_bytes, '\0');
  const auto len = static_cast<std::uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i)
    rec[static_cast<std::size_t>(i)] = static_cast<char>((len >> (8 * i)) & 0xff);
  for (int i = 0; i < 8; ++i)
    rec[static_cast<std::size_t>(8 + i)] = static_cast<char>((seq >> (8 * i)) & 0xff);
  rec[16] = static_cast<char>(kind);
  const auto crc = crc32(payload.data(), payload.size(), crc32(rec.data() + 8, 16));
  for (int i = 0; i < 4; ++i)
    rec[static_cast<std::size_t>(4 + i)] = static_cast<char>((crc >> (8 * i)) & 0xff);
  rec.append(payload);
  if (auto st = write_all(fd_, rec.data(), rec.size(), active_); !st) {
    // Nothing half-written stays behind (a later open would cut it anyway).
    // If even that fails, no record may follow the garbage: the log stops.
    if (::ftruncate(fd_, static_cast<off_t>(active_bytes_)) != 0)
      failed_ = "a write failed and could not be undone (" + st.err().message + ")";
    return st.err();
  }
  active_bytes_ += rec.size();
  last_seq_ = seq;
  dirty_ = true;
  return seq;
}

status partition_log::sync() {
  if (!failed_.empty())
    return core::make_error(core::errc::io_error,
                            "log '" + dir_ + "' takes no more records: " + failed_
                                + "; restart the node");
  if (fd_ >= 0 && dirty_ && ::fdatasync(fd_) != 0) {
    // After a failed fdatasync the kernel may have dropped the dirty pages
    // and report the next sync as fine: nothing more is acknowledged.
    auto e = sys_error("cannot sync log segment", active_);
    failed_ = e.message;
    return e;
  }
  dirty_ = false;
  if (dir_dirty_) {
    if (auto st = sync_dir(dir_); !st)
      return st;
    dir_dirty_ = false;
  }
  return {};
}

status partition_log::remove_through(std::uint64_t seq) {
  // Segment k holds records firsts_[k] .. firsts_[k + 1] - 1.
  while (firsts_.size() > 1 && firsts_[1] - 1 <= seq) {
    const auto path = dir_ + "/" + segment_name(firsts_.front());
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return sys_error("cannot remove log segment", path);
    firsts_.erase(firsts_.begin());
  }
  return {};
}

std::uint64_t partition_log::disk_bytes() const {
  std::uint64_t total = 0;
  for (auto first : firsts_) {
    struct stat sb {};
    const auto path = dir_ + "/" + segment_name(first);
    if (::stat(path.c_str(), &sb) == 0)
      total += static_cast<std::uint64_t>(sb.st_size);
  }
  return total;
}

} // namespace shardrec::storage
