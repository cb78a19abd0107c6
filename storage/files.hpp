// Small file-system primitives of the durable store, with errors that name
// the file: checksums (zlib's CRC-32), whole-file writes made atomic (write
// to a temporary, fsync, rename, fsync the folder), checksummed blobs, and a
// lock that keeps two processes out of one data folder. POSIX only; no CAF,
// no Cap'n Proto (storage/ holds bytes, actors/ knows what they mean).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace shardrec::storage {

using core::result;
using core::status;

// CRC-32 (zlib) of [data, data + n), continuing from `crc` (0 to start).
std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc = 0);

// Creates `dir` and its parents if missing.
status make_dirs(const std::string& dir);
// fsyncs the folder itself, so that files created or renamed in it survive
// a crash.
status sync_dir(const std::string& dir);
// fsyncs a file written with ordinary streams (a copied partition's files).
status sync_file(const std::string& path);

// Writes `bytes` to `path` so that after a crash the file holds either its
// old content or all of `bytes`: path.tmp, fsync, rename, fsync of the folder.
status write_atomically(const std::string& path, std::string_view bytes);

// A blob file: a 16-byte header (magic "SRB1", CRC-32 of the payload, its
// length as u64, little-endian), then the payload; written atomically.
// read_blob checks magic, length and checksum and names the file and the
// problem.
status write_blob(const std::string& path, std::string_view payload);
result<std::string> read_blob(const std::string& path);

// An exclusive lock on `dir`/LOCK (flock), held until the object dies.
class dir_lock {
public:
  // io_error naming the folder when another process holds it.
  static result<dir_lock> acquire(const std::string& dir);
  dir_lock(dir_lock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  dir_lock& operator=(dir_lock&& o) noexcept;
  dir_lock(const dir_lock&) = delete;
  dir_lock& operator=(const dir_lock&) = delete;
  ~dir_lock();

private:
  explicit dir_lock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

} // namespace shardrec::storage
