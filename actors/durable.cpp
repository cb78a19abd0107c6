#include "actors/durable.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "actors/codec.hpp"
#include "actors/codec_snapshot.hpp"
#include "storage/files.hpp"
#include "storage/snapshots.hpp"

namespace shardrec::actors {

std::string partition_dir(const durability& d, std::uint32_t partition) {
  if (d.data_dir.empty())
    return {};
  char name[16];
  std::snprintf(name, sizeof name, "p%05u", partition);
  return d.data_dir + "/partitions/" + name;
}

ingest_result apply_events(partition_data& d, const event_batch& b) {
  if (b.has_scale)
    d.scale = b.scale;
  ingest_result r;
  std::size_t index = 0;
  const auto& m = d.model.users;
  const bool fold =
      m.ials_fold != nullptr || m.mf_fold != nullptr || !m.content.ref_vectors.empty();
  std::vector<core::index_t> users; // owned users with a new event, to fold in
  for (const auto& e : b.events) {
    auto st = d.store->add(e);
    if (st) {
      ++r.accepted;
      if (fold && d.store->owns_user(e.user))
        users.push_back(*d.store->users().find(e.user));
      if (d.store->owns_item(e.item))
        d.live.on_item_event(*d.store);
      if (e.type != core::event_type::rating)
        d.ratings_only = false;
    } else {
      ++r.rejected;
      if (r.problems.size() < 10)
        r.problems.push_back("event " + std::to_string(index) + ": " + st.err().message);
    }
    ++index;
  }
  // The users' factors follow their new events at once (the same function
  // on arrival and on replay, so a restart folds in the same).
  std::sort(users.begin(), users.end());
  users.erase(std::unique(users.begin(), users.end()), users.end());
  for (auto u : users)
    dist::fold_in_user(d.model.users, *d.store, u);
  return r;
}

ingest_result apply_items(partition_data& d, item_batch b) {
  ingest_result r;
  for (auto& [id, info] : b.items) {
    if (id.empty()) {
      ++r.rejected;
      continue;
    }
    d.store->set_item_info(id, std::move(info));
    if (auto row = d.store->items().find(id))
      d.live.on_item_info(*d.store, *row);
    ++r.accepted;
  }
  return r;
}

frame u64_record(std::uint64_t v) {
  frame f;
  for (int i = 0; i < 8; ++i)
    f.bytes.push_back(static_cast<std::uint8_t>((v >> (8 * i)) & 0xff));
  return f;
}

core::result<decoded_record> decode_record(std::uint8_t kind, const frame& payload) {
  decoded_record r;
  r.kind = kind;
  if (kind == record_events) {
    auto b = decode_event_batch(payload);
    if (!b)
      return b.err();
    r.events = std::move(*b);
    return r;
  }
  if (kind == record_items) {
    auto b = decode_item_batch(payload);
    if (!b)
      return b.err();
    r.items = std::move(*b);
    return r;
  }
  const auto& bytes = payload.bytes;
  if ((kind == record_publish || kind == record_epoch) && bytes.size() == 8) {
    for (int i = 7; i >= 0; --i)
      r.value = (r.value << 8) | bytes[static_cast<std::size_t>(i)];
    return r;
  }
  if (kind == record_publish || kind == record_epoch)
    return core::make_error(core::errc::bad_message,
                            "log record kind " + std::to_string(kind) + " of "
                                + std::to_string(bytes.size()) + " bytes, not 8");
  return core::make_error(core::errc::bad_message,
                          "unknown log record kind " + std::to_string(kind));
}

void apply_decoded(partition_data& d, std::uint64_t seq, decoded_record rec,
                   std::uint64_t* count, std::vector<std::string>* notes) {
  if (rec.kind == record_events) {
    *count += rec.events.events.size();
    auto r = apply_events(d, rec.events);
    d.batches.add(rec.events.id, {seq, r.accepted, r.rejected});
  } else if (rec.kind == record_items) {
    *count += rec.items.items.size();
    const auto id = rec.items.id;
    auto r = apply_items(d, std::move(rec.items));
    d.batches.add(id, {seq, r.accepted, r.rejected});
  } else if (rec.kind == record_epoch) {
    d.epochs.add(rec.value, seq);
  } else if (rec.kind == record_publish) {
    const auto v = rec.value;
    if (v > d.model_version && notes)
      notes->push_back("model version " + std::to_string(v)
                       + " was published but its snapshot was never written: serving "
                       + (d.model_version ? "version " + std::to_string(d.model_version)
                                          : std::string("no model"))
                       + " until the next training");
  }
}

core::status apply_record(partition_data& d, std::uint64_t seq, std::uint8_t kind,
                          std::string_view payload, std::uint64_t* count,
                          std::vector<std::string>* notes) {
  frame f; // the decoders read frames
  f.bytes.assign(payload.begin(), payload.end());
  auto rec = decode_record(kind, f);
  if (!rec)
    return rec.err();
  apply_decoded(d, seq, std::move(*rec), count, notes);
  return {};
}

core::status load_snapshot_bytes(std::string_view bytes, const std::string& path,
                                 std::uint32_t partition, std::uint32_t partitions,
                                 partition_data& d, std::uint64_t& seq) {
  auto snap = decode_snapshot(bytes.data(), bytes.size());
  if (!snap)
    return core::make_error(snap.err().code, "'" + path + "': " + snap.err().message);
  if (snap->store.partition != partition || snap->store.partitions != partitions)
    return core::make_error(
        core::errc::invalid_argument,
        "'" + path + "' holds partition " + std::to_string(snap->store.partition) + " of "
            + std::to_string(snap->store.partitions) + ", not "
            + std::to_string(partition) + " of " + std::to_string(partitions));
  auto store = dist::partition_store::from_image(std::move(snap->store));
  if (!store)
    return core::make_error(store.err().code, "'" + path + "': " + store.err().message);
  partition_data out;
  out.store = std::make_unique<dist::partition_store>(std::move(*store));
  out.ratings_only = snap->ratings_only;
  out.scale = snap->scale;
  out.model_version = snap->model_version;
  for (std::size_t k = 0; k < snap->epochs.size(); ++k)
    out.epochs.add(snap->epochs[k], snap->epoch_starts[k]);
  if (snap->model) {
    auto served = make_served(*snap->model);
    if (!served)
      return core::make_error(served.err().code,
                              "'" + path + "': " + served.err().message);
    out.model = std::move(*served);
  }
  d = std::move(out);
  seq = snap->log_seq;
  return {};
}

namespace {

// Loads snapshot file `path` into `d`.
core::status load_snapshot(const std::string& path, std::uint32_t partition,
                           std::uint32_t partitions, partition_data& d,
                           std::uint64_t& seq) {
  auto bytes = storage::read_blob(path);
  if (!bytes)
    return bytes.err();
  return load_snapshot_bytes(*bytes, path, partition, partitions, d, seq);
}

} // namespace

namespace {

// PARTITION_DIR/batches: the batch window (batch_window) as of the newest
// snapshot, so that a batch sent again after a move or a restart (whose
// snapshot no longer has the log records it came in) is still stored once:
// per id u64 id, seq, accepted, rejected (little-endian), in arrival order.
std::string batches_path(const durability& dur, std::uint32_t partition) {
  return partition_dir(dur, partition) + "/batches";
}

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_u64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

core::status write_batches(const durability& dur, const partition_data& d) {
  std::string out;
  out.reserve(d.batches.order.size() * 32);
  for (auto id : d.batches.order) {
    const auto* e = d.batches.find(id);
    put_u64(out, id);
    put_u64(out, e->seq);
    put_u64(out, e->accepted);
    put_u64(out, e->rejected);
  }
  return storage::write_blob(batches_path(dur, d.store->partition()), out);
}

// Missing (an older release's folder): nothing; unreadable: a note.
void read_batches(const durability& dur, partition_data& d,
                  std::vector<std::string>& notes) {
  const auto path = batches_path(dur, d.store->partition());
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return;
  auto bytes = storage::read_blob(path);
  if (!bytes || bytes->size() % 32 != 0) {
    notes.push_back("batch ids skipped ("
                    + (bytes ? path + ": odd size" : bytes.err().message)
                    + "): a batch sent again right now may be stored twice");
    return;
  }
  for (std::size_t k = 0; k < bytes->size(); k += 32) {
    const char* p = bytes->data() + k;
    d.batches.add(get_u64(p), {get_u64(p + 8), get_u64(p + 16), get_u64(p + 24)});
  }
}

} // namespace

core::result<recovered_partition> recover_partition(const durability& dur,
                                                    std::uint32_t partition,
                                                    std::uint32_t partitions) {
  recovered_partition out;
  out.data.store = std::make_unique<dist::partition_store>(partition, partitions);
  if (dur.data_dir.empty())
    return out;
  const auto dir = partition_dir(dur, partition);
  for (const auto& snap : storage::list_snapshots(dir + "/snapshots")) {
    std::uint64_t seq = 0;
    auto st = load_snapshot(snap.path, partition, partitions, out.data, seq);
    if (st) {
      out.snapshot_seq = seq;
      break;
    }
    // Out of the way (and out of the two kept), for an operator to look at.
    const auto aside = snap.path + ".corrupt";
    std::rename(snap.path.c_str(), aside.c_str());
    out.notes.push_back("snapshot skipped: " + st.err().message + "; moved to '" + aside
                        + "'; trying the one before");
  }
  // The live item side of the snapshot's model; the replay below keeps it.
  reset_live(out.data);
  read_batches(dur, out.data, out.notes);
  storage::partition_log::recovery rec;
  storage::log_options opt;
  opt.segment_bytes = dur.segment_bytes;
  auto log = storage::partition_log::open(
      dir + "/log", out.snapshot_seq,
      [&](std::uint64_t seq, std::uint8_t kind,
          std::string_view payload) -> core::status {
        auto st =
            apply_record(out.data, seq, kind, payload, &out.replayed_events, &out.notes);
        if (!st)
          return core::make_error(st.err().code, "log '" + dir + "/log' record "
                                                     + std::to_string(seq) + ": "
                                                     + st.err().message);
        return {};
      },
      &rec, opt);
  if (!log)
    return log.err();
  out.log = std::make_unique<storage::partition_log>(std::move(*log));
  out.replayed = rec.replayed;
  for (auto& n : rec.notes)
    out.notes.push_back(std::move(n));
  return out;
}

std::string snapshot_bytes(const partition_data& d, std::uint64_t seq) {
  partition_snapshot snap;
  snap.log_seq = seq;
  snap.model_version = d.model_version;
  for (const auto& e : d.epochs.starts) {
    snap.epochs.push_back(e.epoch);
    snap.epoch_starts.push_back(e.seq);
  }
  snap.ratings_only = d.ratings_only;
  snap.scale = d.scale;
  snap.store = d.store->image();
  if (d.model.scorer)
    snap.model = image_of(d.model);
  return encode_snapshot(snap);
}

core::result<std::uint64_t> write_partition_snapshot(const durability& dur,
                                                     const partition_data& d,
                                                     storage::partition_log& log) {
  const auto bytes = snapshot_bytes(d, log.last_seq());
  if (auto st = write_batches(dur, d); !st)
    return st.err();
  auto oldest = storage::write_snapshot(
      partition_dir(dur, d.store->partition()) + "/snapshots", log.last_seq(), bytes);
  if (!oldest)
    return oldest.err();
  if (auto st = log.remove_through(*oldest); !st)
    return st.err();
  return bytes.size();
}

} // namespace shardrec::actors
