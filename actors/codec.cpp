#include "actors/codec.hpp"
#include "actors/codec_parts.hpp"
#include "actors/codec_util.hpp"

#include <cstring>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include "schema/admin.capnp.h"
#include "schema/cluster.capnp.h"
#include "schema/events.capnp.h"

namespace shardrec::actors {

namespace {

using detail::bad_message;
using detail::read_frame;
using detail::text;
using detail::to_frame;

void fill(wire::PartitionMap::Builder b, const partition_map& m) {
  b.setVersion(m.version);
  b.setPartitions(m.partitions);
  auto nodes = b.initNodes(static_cast<unsigned>(m.nodes.size()));
  for (unsigned i = 0; i < m.nodes.size(); ++i) {
    nodes[i].setId(m.nodes[i].id);
    nodes[i].setHost(m.nodes[i].host);
    nodes[i].setPort(m.nodes[i].port);
    nodes[i].setState(m.nodes[i].state);
    nodes[i].setController(m.nodes[i].controller);
  }
  auto owner = b.initOwner(static_cast<unsigned>(m.owner.size()));
  for (unsigned i = 0; i < m.owner.size(); ++i)
    owner.set(i, m.owner[i]);
  auto epoch = b.initEpoch(static_cast<unsigned>(m.epoch.size()));
  for (unsigned i = 0; i < m.epoch.size(); ++i)
    epoch.set(i, m.epoch[i]);
  auto followers = b.initFollowers(static_cast<unsigned>(m.followers.size()));
  for (unsigned i = 0; i < m.followers.size(); ++i) {
    auto f = followers.init(i, static_cast<unsigned>(m.followers[i].size()));
    for (unsigned k = 0; k < m.followers[i].size(); ++k)
      f.set(k, m.followers[i][k]);
  }
}

partition_map read(wire::PartitionMap::Reader r) {
  partition_map m;
  m.version = r.getVersion();
  m.partitions = r.getPartitions();
  for (auto n : r.getNodes())
    m.nodes.push_back({n.getId(), text(n.getHost()), n.getPort(), text(n.getState()),
                       n.getController()});
  for (auto o : r.getOwner())
    m.owner.push_back(o);
  for (auto e : r.getEpoch())
    m.epoch.push_back(e);
  for (auto f : r.getFollowers()) {
    m.followers.emplace_back();
    for (auto id : f)
      m.followers.back().push_back(id);
  }
  return m;
}

void fill(wire::PartitionStatus::Builder b, const partition_status& s) {
  b.setPartition(s.partition);
  b.setNode(s.node);
  b.setUsers(s.users);
  b.setItems(s.items);
  b.setUserEvents(s.user_events);
  b.setItemEvents(s.item_events);
  b.setRatingsOnly(s.ratings_only);
  b.setTrainBytes(s.train_bytes);
  b.setModelVersion(s.model_version);
  b.setLogSeq(s.log_seq);
  b.setSnapshotSeq(s.snapshot_seq);
  b.setLogBytes(s.log_bytes);
  auto models = b.initModels(static_cast<unsigned>(s.models.size()));
  for (unsigned i = 0; i < s.models.size(); ++i)
    models.set(i, s.models[i]);
}

partition_status read(wire::PartitionStatus::Reader r) {
  partition_status s;
  s.partition = r.getPartition();
  s.node = r.getNode();
  s.users = r.getUsers();
  s.items = r.getItems();
  s.user_events = r.getUserEvents();
  s.item_events = r.getItemEvents();
  for (auto m : r.getModels())
    s.models.push_back(text(m));
  s.ratings_only = r.getRatingsOnly();
  s.train_bytes = r.getTrainBytes();
  s.model_version = r.getModelVersion();
  s.log_seq = r.getLogSeq();
  s.snapshot_seq = r.getSnapshotSeq();
  s.log_bytes = r.getLogBytes();
  return s;
}

} // namespace

frame encode(const event_batch& b) {
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<wire::EventBatch>();
  root.setRatingMin(b.scale.min);
  root.setRatingMax(b.scale.max);
  root.setHasScale(b.has_scale);
  root.setBatchId(b.id);
  auto list = root.initEvents(static_cast<unsigned>(b.events.size()));
  for (unsigned i = 0; i < b.events.size(); ++i) {
    const auto& e = b.events[i];
    auto w = list[i];
    w.setUser(e.user);
    w.setItem(e.item);
    w.setValue(e.value);
    w.setType(static_cast<wire::EventType>(e.type));
    w.setTimestamp(e.timestamp);
    if (!e.device.empty())
      w.setDevice(e.device);
    if (!e.location.empty())
      w.setLocation(e.location);
  }
  return to_frame(mb);
}

core::result<event_batch> decode_event_batch(const frame& f) {
  return read_frame<wire::EventBatch, event_batch>(f, [](wire::EventBatch::Reader r) {
    event_batch b;
    b.scale = {r.getRatingMin(), r.getRatingMax()};
    b.has_scale = r.getHasScale();
    b.id = r.getBatchId();
    auto list = r.getEvents();
    b.events.reserve(list.size());
    for (auto w : list) {
      dist::raw_event e;
      e.user = text(w.getUser());
      e.item = text(w.getItem());
      e.value = w.getValue();
      // Unknown enumerants (a newer sender) stay out of range and are
      // rejected by core::validate.
      e.type = static_cast<core::event_type>(static_cast<std::uint16_t>(w.getType()));
      e.timestamp = w.getTimestamp();
      e.device = text(w.getDevice());
      e.location = text(w.getLocation());
      b.events.push_back(std::move(e));
    }
    return b;
  });
}

frame encode(const item_batch& b) {
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<wire::ItemBatch>();
  root.setBatchId(b.id);
  auto list = root.initItems(static_cast<unsigned>(b.items.size()));
  for (unsigned i = 0; i < b.items.size(); ++i) {
    const auto& [id, info] = b.items[i];
    auto w = list[i];
    w.setItem(id);
    detail::fill(w, info);
  }
  return to_frame(mb);
}

core::result<item_batch> decode_item_batch(const frame& f) {
  return read_frame<wire::ItemBatch, item_batch>(f, [](wire::ItemBatch::Reader r) {
    item_batch b;
    b.id = r.getBatchId();
    for (auto w : r.getItems())
      b.items.emplace_back(text(w.getItem()), detail::read(w));
    return b;
  });
}

frame encode(const ingest_result& r) {
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<wire::IngestReply>();
  root.setAccepted(r.accepted);
  root.setRejected(r.rejected);
  auto p = root.initProblems(static_cast<unsigned>(r.problems.size()));
  for (unsigned i = 0; i < r.problems.size(); ++i)
    p.set(i, r.problems[i]);
  return to_frame(mb);
}

core::result<ingest_result> decode_ingest_result(const frame& f) {
  return read_frame<wire::IngestReply, ingest_result>(f, [](wire::IngestReply::Reader r) {
    ingest_result out;
    out.accepted = r.getAccepted();
    out.rejected = r.getRejected();
    for (auto p : r.getProblems())
      out.problems.push_back(text(p));
    return out;
  });
}

frame encode(const partition_map& m) {
  capnp::MallocMessageBuilder mb;
  fill(mb.initRoot<wire::PartitionMap>(), m);
  return to_frame(mb);
}

core::result<partition_map> decode_partition_map(const frame& f) {
  return read_frame<wire::PartitionMap, partition_map>(
      f, [](wire::PartitionMap::Reader r) { return read(r); });
}

frame encode(const node_state& s) {
  capnp::MallocMessageBuilder mb;
  auto b = mb.initRoot<wire::NodeState>();
  b.setNodeId(s.node_id);
  fill(b.initMap(), s.map);
  return to_frame(mb);
}

core::result<node_state> decode_node_state(const frame& f) {
  return read_frame<wire::NodeState, node_state>(f, [](wire::NodeState::Reader r) {
    return node_state{r.getNodeId(), read(r.getMap())};
  });
}

frame encode(const partition_status& s) {
  capnp::MallocMessageBuilder mb;
  fill(mb.initRoot<wire::PartitionStatus>(), s);
  return to_frame(mb);
}

core::result<partition_status> decode_partition_status(const frame& f) {
  return read_frame<wire::PartitionStatus, partition_status>(
      f, [](wire::PartitionStatus::Reader r) { return read(r); });
}

frame encode(const status_reply& s) {
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<wire::StatusReply>();
  fill(root.initMap(), s.map);
  auto parts = root.initPartitions(static_cast<unsigned>(s.partitions.size()));
  for (unsigned i = 0; i < s.partitions.size(); ++i)
    fill(parts[i], s.partitions[i]);
  auto missing = root.initMissing(static_cast<unsigned>(s.missing.size()));
  for (unsigned i = 0; i < s.missing.size(); ++i)
    missing.set(i, s.missing[i]);
  return to_frame(mb);
}

core::result<status_reply> decode_status_reply(const frame& f) {
  return read_frame<wire::StatusReply, status_reply>(f, [](wire::StatusReply::Reader r) {
    status_reply s;
    s.map = read(r.getMap());
    for (auto p : r.getPartitions())
      s.partitions.push_back(read(p));
    for (auto m : r.getMissing())
      s.missing.push_back(m);
    return s;
  });
}

frame encode(const train_request& r) {
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<wire::TrainRequest>();
  root.setAlgo(r.algo);
  root.setFactors(r.factors);
  root.setIterations(r.iterations);
  root.setSeed(r.seed);
  root.setEaseMaxItems(r.ease_max_items);
  root.setNoTune(r.no_tune);
  root.setIalsAlpha(r.ials_alpha);
  root.setWeights(r.weights);
  root.setIalsReg(r.ials_reg);
  root.setKnnNeighbors(r.knn_neighbors);
  return to_frame(mb);
}

core::result<train_request> decode_train_request(const frame& f) {
  return read_frame<wire::TrainRequest, train_request>(
      f, [](wire::TrainRequest::Reader r) {
        train_request out;
        out.algo = text(r.getAlgo());
        out.factors = r.getFactors();
        out.iterations = r.getIterations();
        out.seed = r.getSeed();
        out.ease_max_items = r.getEaseMaxItems();
        out.no_tune = r.getNoTune();
        out.ials_alpha = r.getIalsAlpha();
        out.weights = text(r.getWeights());
        out.ials_reg = r.getIalsReg();
        out.knn_neighbors = r.getKnnNeighbors();
        return out;
      });
}

frame encode(const train_reply& r) {
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<wire::TrainReply>();
  root.setAlgo(r.algo);
  root.setSeconds(r.seconds);
  root.setBytesSent(r.bytes_sent);
  root.setMessages(r.messages);
  auto loss = root.initLoss(static_cast<unsigned>(r.loss.size()));
  for (unsigned i = 0; i < r.loss.size(); ++i)
    loss.set(i, r.loss[i]);
  auto phases = root.initPhases(static_cast<unsigned>(r.phases.size()));
  for (unsigned i = 0; i < r.phases.size(); ++i) {
    phases[i].setName(r.phases[i].first);
    phases[i].setSeconds(r.phases[i].second);
  }
  auto notes = root.initNotes(static_cast<unsigned>(r.notes.size()));
  for (unsigned i = 0; i < r.notes.size(); ++i)
    notes.set(i, r.notes[i]);
  root.setBlend(r.blend);
  if (r.tuning) {
    const auto& t = *r.tuning;
    auto b = root.initTuning();
    auto trial = [](wire::TuningTrial::Builder w, const core::tuning_trial& x) {
      w.setWhat(x.what);
      w.setNdcg(x.ndcg);
      w.setHitRate(x.hit_rate);
      w.setSeconds(x.seconds);
    };
    b.setWeights(t.chosen.weights);
    b.setIalsAlpha(t.chosen.ials_alpha);
    b.setEaseLambda(t.chosen.ease_lambda);
    b.setIalsReg(t.chosen.ials_reg);
    b.setKnnNeighbors(static_cast<std::uint32_t>(t.chosen.knn_neighbors));
    b.setDefaultWeights(t.default_weights);
    b.setValidation(t.validation);
    b.setSampleUsers(t.sample_users);
    b.setValidationUsers(t.validation_users);
    b.setItems(t.items);
    trial(b.initDefaults(), t.defaults);
    trial(b.initBest(), t.best);
    auto v = b.initVariants(static_cast<unsigned>(t.variants.size()));
    for (unsigned i = 0; i < t.variants.size(); ++i)
      trial(v[i], t.variants[i]);
    b.setBlendsTried(t.blends_tried);
    b.setSeconds(t.seconds);
  }
  return to_frame(mb);
}

core::result<train_reply> decode_train_reply(const frame& f) {
  return read_frame<wire::TrainReply, train_reply>(f, [](wire::TrainReply::Reader r) {
    train_reply out;
    out.algo = text(r.getAlgo());
    out.seconds = r.getSeconds();
    out.bytes_sent = r.getBytesSent();
    out.messages = r.getMessages();
    for (auto l : r.getLoss())
      out.loss.push_back(l);
    for (auto p : r.getPhases())
      out.phases.emplace_back(text(p.getName()), p.getSeconds());
    for (auto n : r.getNotes())
      out.notes.push_back(text(n));
    out.blend = text(r.getBlend());
    if (r.hasTuning()) {
      auto b = r.getTuning();
      auto trial = [](wire::TuningTrial::Reader w) {
        return core::tuning_trial{text(w.getWhat()), w.getNdcg(), w.getHitRate(),
                                  w.getSeconds()};
      };
      core::tuning_report t;
      t.chosen.weights = text(b.getWeights());
      t.chosen.ials_alpha = b.getIalsAlpha();
      t.chosen.ease_lambda = b.getEaseLambda();
      t.chosen.ials_reg = b.getIalsReg();
      t.chosen.knn_neighbors = b.getKnnNeighbors();
      t.default_weights = text(b.getDefaultWeights());
      t.validation = text(b.getValidation());
      t.sample_users = b.getSampleUsers();
      t.validation_users = b.getValidationUsers();
      t.items = b.getItems();
      t.defaults = trial(b.getDefaults());
      t.best = trial(b.getBest());
      for (auto v : b.getVariants())
        t.variants.push_back(trial(v));
      t.blends_tried = b.getBlendsTried();
      t.seconds = b.getSeconds();
      out.tuning = std::move(t);
    }
    return out;
  });
}

frame encode(const recommend_request& r) {
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<wire::RecommendRequest>();
  root.setUser(r.user);
  root.setN(r.n);
  root.setAlgo(r.algo);
  return to_frame(mb);
}

core::result<recommend_request> decode_recommend_request(const frame& f) {
  return read_frame<wire::RecommendRequest, recommend_request>(
      f, [](wire::RecommendRequest::Reader r) {
        recommend_request out;
        out.user = text(r.getUser());
        out.n = r.getN();
        out.algo = text(r.getAlgo());
        return out;
      });
}

frame encode(const recommend_reply& r) {
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<wire::RecommendReply>();
  root.setUser(r.user);
  root.setPartial(r.partial);
  auto items = root.initItems(static_cast<unsigned>(r.items.size()));
  for (unsigned i = 0; i < r.items.size(); ++i) {
    const auto& x = r.items[i];
    items[i].setItem(x.item);
    items[i].setScore(x.score);
    auto comps = items[i].initComponents(static_cast<unsigned>(x.components.size()));
    for (unsigned c = 0; c < x.components.size(); ++c) {
      comps[c].setName(x.components[c].name);
      comps[c].setRaw(x.components[c].raw);
      comps[c].setContribution(x.components[c].contribution);
    }
    auto because = items[i].initBecause(static_cast<unsigned>(x.because.size()));
    for (unsigned b = 0; b < x.because.size(); ++b)
      because.set(b, x.because[b]);
    items[i].setBecauseFrom(x.because_from);
  }
  auto missing = root.initMissingPartitions(static_cast<unsigned>(r.missing.size()));
  for (unsigned i = 0; i < r.missing.size(); ++i)
    missing.set(i, r.missing[i]);
  auto cold = root.initColdStart(static_cast<unsigned>(r.cold_start.size()));
  for (unsigned i = 0; i < r.cold_start.size(); ++i)
    cold.set(i, r.cold_start[i]);
  root.setNote(r.note);
  return to_frame(mb);
}

core::result<recommend_reply> decode_recommend_reply(const frame& f) {
  return read_frame<wire::RecommendReply,
                    recommend_reply>(f, [](wire::RecommendReply::Reader r) {
    recommend_reply out;
    out.user = text(r.getUser());
    out.partial = r.getPartial();
    for (auto x : r.getItems()) {
      recommendation rec;
      rec.item = text(x.getItem());
      rec.score = x.getScore();
      for (auto c : x.getComponents())
        rec.components.push_back({text(c.getName()), c.getRaw(), c.getContribution()});
      for (auto b : x.getBecause())
        rec.because.push_back(text(b));
      rec.because_from = text(x.getBecauseFrom());
      out.items.push_back(std::move(rec));
    }
    for (auto m : r.getMissingPartitions())
      out.missing.push_back(m);
    for (auto c : r.getColdStart())
      out.cold_start.push_back(text(c));
    out.note = text(r.getNote());
    return out;
  });
}

frame encode(const similar_request& r) {
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<wire::SimilarRequest>();
  root.setItem(r.item);
  root.setN(r.n);
  return to_frame(mb);
}

core::result<similar_request> decode_similar_request(const frame& f) {
  return read_frame<wire::SimilarRequest, similar_request>(
      f, [](wire::SimilarRequest::Reader r) {
        similar_request out;
        out.item = text(r.getItem());
        out.n = r.getN();
        return out;
      });
}

frame encode(const popular_request& r) {
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<wire::PopularRequest>();
  root.setN(r.n);
  root.setTrending(r.trending);
  return to_frame(mb);
}

core::result<popular_request> decode_popular_request(const frame& f) {
  return read_frame<wire::PopularRequest, popular_request>(
      f, [](wire::PopularRequest::Reader r) {
        popular_request out;
        out.n = r.getN();
        out.trending = r.getTrending();
        return out;
      });
}

frame encode(const popular_reply& r) {
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<wire::PopularReply>();
  root.setTrending(r.trending);
  root.setPartial(r.partial);
  root.setNow(r.now);
  auto list = root.initItems(static_cast<unsigned>(r.items.size()));
  for (unsigned i = 0; i < r.items.size(); ++i) {
    list[i].setItem(r.items[i].first);
    list[i].setScore(r.items[i].second);
  }
  auto missing = root.initMissingPartitions(static_cast<unsigned>(r.missing.size()));
  for (unsigned i = 0; i < r.missing.size(); ++i)
    missing.set(i, r.missing[i]);
  return to_frame(mb);
}

core::result<popular_reply> decode_popular_reply(const frame& f) {
  return read_frame<wire::PopularReply, popular_reply>(
      f, [](wire::PopularReply::Reader r) {
        popular_reply out;
        out.trending = r.getTrending();
        out.partial = r.getPartial();
        out.now = r.getNow();
        for (auto x : r.getItems())
          out.items.emplace_back(text(x.getItem()), x.getScore());
        for (auto m : r.getMissingPartitions())
          out.missing.push_back(m);
        return out;
      });
}

frame encode(const similar_reply& r) {
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<wire::SimilarReply>();
  root.setItem(r.item);
  root.setPartial(r.partial);
  auto list = root.initNeighbors(static_cast<unsigned>(r.neighbors.size()));
  for (unsigned i = 0; i < r.neighbors.size(); ++i) {
    list[i].setItem(r.neighbors[i].first);
    list[i].setSimilarity(r.neighbors[i].second);
  }
  auto missing = root.initMissingPartitions(static_cast<unsigned>(r.missing.size()));
  for (unsigned i = 0; i < r.missing.size(); ++i)
    missing.set(i, r.missing[i]);
  root.setNote(r.note);
  return to_frame(mb);
}

core::result<similar_reply> decode_similar_reply(const frame& f) {
  return read_frame<wire::SimilarReply, similar_reply>(
      f, [](wire::SimilarReply::Reader r) {
        similar_reply out;
        out.item = text(r.getItem());
        out.partial = r.getPartial();
        for (auto x : r.getNeighbors())
          out.neighbors.emplace_back(text(x.getItem()), x.getSimilarity());
        for (auto m : r.getMissingPartitions())
          out.missing.push_back(m);
        out.note = text(r.getNote());
        return out;
      });
}

} // namespace shardrec::actors
