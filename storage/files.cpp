#include "storage/files.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "storage/posix.hpp"

namespace shardrec::storage {

namespace fs = std::filesystem;

std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc) {
  const auto* p = static_cast<const Bytef*>(data);
  uLong c = crc;
  while (n > 0) {
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
    c = ::crc32(c, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<std::uint32_t>(c);
}

status make_dirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return core::make_error(core::errc::io_error,
                            "cannot create folder '" + dir + "': " + ec.message());
  return {};
}

namespace {

// Opens `path` with `flags`, fsyncs it and closes it; errors say `what`.
status sync_path(const std::string& path, int flags, const char* what) {
  int fd = ::open(path.c_str(), flags | O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return sys_error(std::string("cannot open ") + what, path);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    errno = err;
    return sys_error(std::string("cannot sync ") + what, path);
  }
  return {};
}

} // namespace

status sync_dir(const std::string& dir) {
  return sync_path(dir, O_DIRECTORY, "folder");
}

status sync_file(const std::string& path) {
  return sync_path(path, 0, "file");
}

status write_atomically(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return sys_error("cannot create", tmp);
  auto st = write_all(fd, bytes.data(), bytes.size(), tmp);
  if (st && ::fsync(fd) != 0)
    st = sys_error("cannot sync", tmp);
  ::close(fd);
  if (st && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = sys_error("cannot rename to '" + path + "'", tmp);
  if (!st) {
    ::unlink(tmp.c_str());
    return st;
  }
  return sync_dir(fs::path(path).parent_path().string());
}

namespace {

constexpr char blob_magic[4] = {'S', 'R', 'B', '1'};
constexpr std::size_t blob_header = 16;

void put_u32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_u64(char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

} // namespace

std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
std::uint64_t get_u64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

status write_blob(const std::string& path, std::string_view payload) {
  std::string bytes(blob_header, '\0');
  std::memcpy(bytes.data(), blob_magic, 4);
  put_u32(bytes.data() + 4, crc32(payload.data(), payload.size()));
  put_u64(bytes.data() + 8, payload.size());
  bytes.append(payload);
  return write_atomically(path, bytes);
}

result<std::string> read_blob(const std::string& path) {
  auto bytes = read_file(path);
  if (!bytes)
    return bytes.err();
  const std::string& b = *bytes;
  auto bad = [&](const std::string& what) {
    return core::make_error(core::errc::bad_message, "file '" + path + "': " + what);
  };
  if (b.size() < blob_header)
    return bad("shorter than its header (" + std::to_string(b.size()) + " bytes)");
  if (std::memcmp(b.data(), blob_magic, 4) != 0)
    return bad("not a shardrec blob (bad magic)");
  const auto size = get_u64(b.data() + 8);
  if (size != b.size() - blob_header)
    return bad("length field says " + std::to_string(size) + " bytes, the file has "
               + std::to_string(b.size() - blob_header));
  const auto crc = crc32(b.data() + blob_header, b.size() - blob_header);
  if (crc != get_u32(b.data() + 4))
    return bad("checksum mismatch (corrupt)");
  return b.substr(blob_header);
}

result<dir_lock> dir_lock::acquire(const std::string& dir) {
  const std::string path = dir + "/LOCK";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return sys_error("cannot open lock file", path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return core::make_error(core::errc::io_error,
                            "data folder '" + dir
                                + "' is in use by another process (its LOCK is held)");
  }
  return dir_lock(fd);
}

dir_lock& dir_lock::operator=(dir_lock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

dir_lock::~dir_lock() {
  if (fd_ >= 0)
    ::close(fd_);
}

} // namespace shardrec::storage
