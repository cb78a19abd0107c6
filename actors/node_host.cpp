// The node host: one per node, spawns the shards of the partitions the map
// gives this node, links and monitors them, and passes each shard's scorer
// to the node scorer after every publish (only from the shard that hosts
// the partition now, never a late message of one it replaced). Linked by
// the node's coordinator; asked by the node's membership actor.
//
// Messages:
//   (assign_atom, u32 partitions, u32 node id, vector<u32> hosted)
//                                       -> vector<actor> shards, in `hosted` order;
//                                          shards of partitions not listed stop, but
//                                          only if they hold no data or were exported
//                                          (else an error and nothing changes); an
//                                          exported one answers queries for 10 s more
//                                          (nodes that still route to it), then stops
//                                          and its folder moves aside (pNNNNN.moved)
//   (assign_atom, u32, u32, vector<u32> hosted, bool replicated)
//                                       -> the same; replicated (a map with
//                                          replicas): a partition not listed stops
//                                          even with data (its copies are
//                                          elsewhere), its folder set aside
//                                          (pNNNNN.stale)
//   (export_atom, u32 partition)        -> vector<string> files, vector<u64> sizes:
//                                          the partition moves away; its shard takes
//                                          no more writes and its folder is complete
//                                          (paths relative to it)
//   (export_atom, u32 partition, false) -> (nothing) its move was called off: the
//                                          shard takes writes again
//   (fetch_atom, u32 partition, string file, u64 offset)
//                                       -> frame: up to 4 MiB of an exported
//                                          partition's file from `offset`
//   (scorer_atom, u32 partition, shared_scorer) -> (nothing) from a hosted shard
//   (peers_atom, vector<actor> shards)  -> (nothing) from the node's membership
//                                          actor after each view: passed on to
//                                          every hosted shard
#include "actors/node_host.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/codec.hpp"
#include "actors/errc.hpp"
#include "actors/interfaces.hpp"
#include "actors/local_messages.hpp"
#include "actors/scatter.hpp"
#include "actors/shard.hpp"

namespace shardrec::actors {

namespace {

struct node_host_state {
  std::map<std::uint32_t, caf::actor> shards;    // by hosted partition
  std::set<std::uint32_t> exported;              // hosted partitions that move away
  std::map<std::uint32_t, caf::actor> departing; // moved away, stopping soon
  caf::actor scorer;
  durability dur;
  static inline const char* name = "node_host";
};

using node_host_pointer = caf::stateful_actor<node_host_state>*;

// What a partition's recovery found, for the node's log (stderr): every cut
// or skipped snapshot, and a summary when there was anything to recover.
void report_recovery(std::uint32_t p, const recovered_partition& rec) {
  for (const auto& note : rec.notes)
    std::fprintf(stderr, "shardrec-node: partition %u: %s\n", p, note.c_str());
  if (rec.snapshot_seq > 0 || rec.replayed > 0)
    std::fprintf(stderr,
                 "shardrec-node: partition %u: recovered %zu events, %zu items "
                 "(snapshot through record %llu, then %llu log records), model version "
                 "%llu\n",
                 p, rec.data.store->user_events() + rec.data.store->item_events(),
                 rec.data.store->items().size(),
                 static_cast<unsigned long long>(rec.snapshot_seq),
                 static_cast<unsigned long long>(rec.replayed),
                 static_cast<unsigned long long>(rec.data.model_version));
}

// Renames partition p's folder to pNNNNN`suffix` (replacing an older one):
// a partition's live folder is only ever on the node that hosts it.
void set_aside(const durability& dur, std::uint32_t p, const char* suffix) {
  const auto dir = partition_dir(dur, p);
  if (dir.empty())
    return;
  std::error_code ec;
  std::filesystem::remove_all(dir + suffix, ec);
  std::filesystem::rename(dir, dir + suffix, ec);
}

void drop(node_host_pointer self, std::map<std::uint32_t, caf::actor>::iterator it) {
  self->send(self->state.scorer, scorer_atom::value, it->first, shared_scorer{});
  self->state.shards.erase(it);
}

// The partitions `hosted` on this node (see the message list above);
// `replicated` (a map with replicas): a partition not listed any more is
// let go even with data (its primary or followers elsewhere have it): its
// shard stops and its folder moves aside (pNNNNN.stale).
// Stops hosted partition p's shard now and sets its folder aside as
// pNNNNN`suffix`; false if p is not hosted.
bool stop_hosted(node_host_pointer self, std::uint32_t p, const char* suffix) {
  auto it = self->state.shards.find(p);
  if (it == self->state.shards.end())
    return false;
  self->send_exit(it->second, caf::exit_reason::user_shutdown);
  drop(self, it);
  set_aside(self->state.dur, p, suffix);
  return true;
}

caf::result<std::vector<caf::actor>>
assign(node_host_pointer self, std::uint32_t partitions, std::uint32_t node_id,
       const std::vector<std::uint32_t>& hosted, bool replicated) {
  for (auto p : hosted)
    if (p >= partitions)
      return caf::sec::invalid_argument;
  // Partitions moving away: an exported one departs (its new owner
  // has its folder); any other only if empty; with data in any,
  // nothing changes.
  std::vector<std::uint32_t> leaving, departs, stale;
  std::vector<caf::actor> leaving_shards;
  for (const auto& [p, shard] : self->state.shards)
    if (std::find(hosted.begin(), hosted.end(), p) == hosted.end()) {
      if (self->state.exported.count(p) != 0) {
        departs.push_back(p);
        continue;
      }
      if (replicated) {
        stale.push_back(p);
        continue;
      }
      leaving.push_back(p);
      leaving_shards.push_back(shard);
    }
  auto rp = self->make_response_promise<std::vector<caf::actor>>();
  auto held = std::make_shared<std::uint64_t>(0);
  gather_all<frame>(
      self, to_each(leaving_shards, caf::make_message(stats_atom::value)), admin_timeout,
      [held](std::size_t, frame& f) {
        if (auto ps = decode_partition_status(f))
          *held += ps->user_events + ps->items;
      },
      [=](std::size_t, caf::error& err) mutable {
        if (err)
          return (void)rp.deliver(err);
        if (*held > 0)
          return (void)rp.deliver(to_caf_error(core::make_error(
              core::errc::invalid_argument,
              "a partition that would move away holds data; this release moves "
              "no data between nodes")));
        auto& shards = self->state.shards;
        for (auto p : departs) {
          auto it = shards.find(p);
          if (it == shards.end())
            continue;
          self->state.departing[p] = it->second;
          shards.erase(it); // its scorer stays with the node scorer until it stops
          self->state.exported.erase(p);
          self->delayed_send(self, std::chrono::seconds(10), stop_atom::value, p);
          // Aside now (it takes no writes): a copy of p that comes back
          // to this node within the grace period is not touched.
          set_aside(self->state.dur, p, ".moved");
        }
        for (auto p : stale) {
          if (!stop_hosted(self, p, ".stale"))
            continue;
          std::fprintf(stderr,
                       "shardrec-node: partition %u: not hosted here any more "
                       "(its primary and followers are elsewhere); folder set "
                       "aside as .stale\n",
                       p);
        }
        // It held nothing; its folder moves aside (not deleted: an event
        // may have reached the shard since it answered), so that a
        // partition's folder is only ever on the node that hosts it.
        for (auto p : leaving)
          stop_hosted(self, p, ".left");
        // Every new partition's data first (snapshot, then log): a
        // folder that cannot be read fails the assignment before any
        // shard starts.
        std::map<std::uint32_t, std::shared_ptr<recovered_partition>> recovered;
        for (auto p : hosted) {
          if (shards.count(p) != 0)
            continue;
          auto rec = recover_partition(self->state.dur, p, partitions);
          if (!rec)
            return (void)rp.deliver(to_caf_error(core::make_error(
                rec.err().code, "partition " + std::to_string(p)
                                    + " cannot be recovered: " + rec.err().message)));
          report_recovery(p, *rec);
          recovered[p] = std::make_shared<recovered_partition>(std::move(*rec));
        }
        std::vector<caf::actor> out;
        for (auto p : hosted) {
          auto it = shards.find(p);
          if (it == shards.end()) {
            auto s = spawn_shard(self->system(), p, partitions, node_id,
                                 caf::actor_cast<caf::actor>(self), self->state.dur,
                                 recovered[p]);
            self->monitor(s);
            self->link_to(s); // shards die with their node
            it = shards.emplace(p, s).first;
          }
          out.push_back(it->second);
        }
        rp.deliver(out);
      });
  return rp;
}

caf::behavior node_host(node_host_pointer self) {
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& shards = self->state.shards;
    for (auto it = shards.begin(); it != shards.end(); ++it)
      if (it->second.address() == dm.source)
        return drop(self, it);
    auto& departing = self->state.departing;
    for (auto it = departing.begin(); it != departing.end(); ++it)
      if (it->second.address() == dm.source)
        return (void)departing.erase(it);
  });
  return {
      [=](assign_atom, std::uint32_t partitions, std::uint32_t node_id,
          const std::vector<std::uint32_t>& hosted) {
        return assign(self, partitions, node_id, hosted, false);
      },
      [=](assign_atom, std::uint32_t partitions, std::uint32_t node_id,
          const std::vector<std::uint32_t>& hosted, bool replicated) {
        return assign(self, partitions, node_id, hosted, replicated);
      },
      [=](stop_atom, std::uint32_t p) {
        // A moved partition's grace period is over.
        auto& st = self->state;
        auto it = st.departing.find(p);
        if (it == st.departing.end())
          return;
        self->send_exit(it->second, caf::exit_reason::user_shutdown);
        st.departing.erase(it);
        if (st.shards.count(p) == 0)
          self->send(st.scorer, scorer_atom::value, p, shared_scorer{});
      },
      [=](export_atom, std::uint32_t p)
          -> caf::result<std::vector<std::string>, std::vector<std::uint64_t>> {
        auto& st = self->state;
        auto it = st.shards.find(p);
        if (it == st.shards.end())
          return to_caf_error(core::make_error(core::errc::invalid_argument,
                                               "partition " + std::to_string(p)
                                                   + " is not hosted on this node"));
        auto rp = self->make_response_promise<std::vector<std::string>,
                                              std::vector<std::uint64_t>>();
        self->request(it->second, admin_timeout * 6, export_atom::value)
            .then(
                [=](std::uint64_t) mutable {
                  self->state.exported.insert(p);
                  std::vector<std::string> files;
                  std::vector<std::uint64_t> sizes;
                  const auto dir = partition_dir(self->state.dur, p);
                  std::error_code ec;
                  for (auto e = std::filesystem::recursive_directory_iterator(dir, ec);
                       !ec && e != std::filesystem::recursive_directory_iterator();
                       e.increment(ec)) {
                    if (!e->is_regular_file())
                      continue;
                    files.push_back(std::filesystem::relative(e->path(), dir).string());
                    sizes.push_back(e->file_size());
                  }
                  if (ec)
                    rp.deliver(to_caf_error(
                        core::make_error(core::errc::io_error,
                                         "cannot list " + dir + ": " + ec.message())));
                  else
                    rp.deliver(std::move(files), std::move(sizes));
                },
                [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [=](export_atom, std::uint32_t p, bool) {
        // A move called off: the partition takes writes again.
        auto& st = self->state;
        auto it = st.shards.find(p);
        if (st.exported.erase(p) != 0 && it != st.shards.end()) {
          self->send(it->second, export_atom::value, false);
          std::fprintf(stderr,
                       "shardrec-node: partition %u takes writes again (copied to a new "
                       "follower, or its move was called off)\n",
                       p);
        }
      },
      [=](fetch_atom, std::uint32_t p, const std::string& file,
          std::uint64_t offset) -> caf::result<frame> {
        auto& st = self->state;
        const std::filesystem::path rel(file);
        const bool safe = !rel.empty() && rel.is_relative()
                          && std::none_of(rel.begin(), rel.end(),
                                          [](const auto& c) { return c == ".."; });
        if (st.exported.count(p) == 0 || !safe)
          return to_caf_error(core::make_error(
              core::errc::invalid_argument,
              "fetch: partition " + std::to_string(p) + " is not being exported here"
                  + (safe ? "" : " (or '" + file + "' is not a file of it)")));
        std::ifstream in(partition_dir(st.dur, p) + "/" + file, std::ios::binary);
        if (!in)
          return to_caf_error(
              core::make_error(core::errc::io_error, "fetch: cannot read " + file));
        in.seekg(static_cast<std::streamoff>(offset));
        frame out;
        out.bytes.resize(4u << 20);
        in.read(reinterpret_cast<char*>(out.bytes.data()),
                static_cast<std::streamsize>(out.bytes.size()));
        out.bytes.resize(
            static_cast<std::size_t>(std::max<std::streamsize>(0, in.gcount())));
        return out;
      },
      [=](peers_atom, const std::vector<caf::actor>& shards) {
        for (const auto& [p, shard] : self->state.shards)
          self->send(shard, peers_atom::value, shards);
      },
      [=](scorer_atom, std::uint32_t partition, const shared_scorer& s) {
        auto it = self->state.shards.find(partition);
        if (it != self->state.shards.end()
            && self->current_sender() == it->second.address())
          self->send(self->state.scorer, scorer_atom::value, partition, s);
      },
  };
}

} // namespace

caf::actor spawn_node_host(caf::actor_system& sys, caf::actor scorer, durability dur) {
  return sys.spawn([scorer, dur](node_host_pointer self) {
    self->state.scorer = scorer;
    self->state.dur = dur;
    self->send(scorer, host_atom::value);
    return node_host(self);
  });
}

} // namespace shardrec::actors
