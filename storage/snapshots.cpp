#include "storage/snapshots.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>

#include <unistd.h>

#include "storage/files.hpp"
#include "storage/posix.hpp"

namespace shardrec::storage {

namespace fs = std::filesystem;

std::vector<snapshot_file> list_snapshots(const std::string& dir) {
  std::vector<snapshot_file> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (name.size() != 30 || name.compare(0, 5, "snap-") != 0
        || name.compare(25, 5, ".snap") != 0
        || !std::all_of(name.begin() + 5, name.begin() + 25,
                        [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    std::uint64_t seq = 0;
    auto [stop, err] = std::from_chars(name.data() + 5, name.data() + 25, seq);
    if (err != std::errc() || stop != name.data() + 25)
      continue;
    out.push_back({seq, it->path().string()});
  }
  std::sort(out.begin(), out.end(),
            [](const snapshot_file& a, const snapshot_file& b) { return a.seq > b.seq; });
  return out;
}

core::result<std::uint64_t> write_snapshot(const std::string& dir, std::uint64_t seq,
                                           std::string_view payload, std::size_t keep) {
  if (auto st = make_dirs(dir); !st)
    return st.err();
  char name[40];
  std::snprintf(name, sizeof name, "snap-%020llu.snap",
                static_cast<unsigned long long>(seq));
  if (auto st = write_blob(dir + "/" + name, payload); !st)
    return st.err();
  auto all = list_snapshots(dir);
  keep = std::max<std::size_t>(keep, 1);
  for (std::size_t k = keep; k < all.size(); ++k)
    if (::unlink(all[k].path.c_str()) != 0)
      return sys_error("cannot remove old snapshot", all[k].path);
  all.resize(std::min(all.size(), keep));
  return all.back().seq;
}

} // namespace shardrec::storage
