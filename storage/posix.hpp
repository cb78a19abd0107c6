// POSIX helpers private to storage/*.cpp: errors naming the file and errno,
// loops over short reads and writes, little-endian fields.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include "core/error.hpp"

namespace shardrec::storage {

inline core::error sys_error(const std::string& what, const std::string& path) {
  return core::make_error(core::errc::io_error,
                          what + " '" + path + "': " + std::strerror(errno));
}

inline core::status write_all(int fd, const void* data, std::size_t n,
                              const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const auto w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return sys_error("cannot write", path);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return {};
}

inline core::result<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return sys_error("cannot open", path);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const auto r = ::read(fd, buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      auto e = sys_error("cannot read", path);
      ::close(fd);
      return e;
    }
    if (r == 0)
      break;
    out.append(buf, static_cast<std::size_t>(r));
  }
  ::close(fd);
  return out;
}

std::uint32_t get_u32(const char* p);
std::uint64_t get_u64(const char* p);

} // namespace shardrec::storage
