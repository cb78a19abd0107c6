# Requests from the admin CLI and replies of the control actor.
@0xe4930e7afcd25f41;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("shardrec::wire");

using Cluster = import "cluster.capnp";

struct PartitionStatus {
  partition @0 :UInt32;
  node @1 :UInt32;
  users @2 :UInt64;
  items @3 :UInt64;
  userEvents @4 :UInt64;   # events stored for owned users
  itemEvents @5 :UInt64;   # events stored for owned items
  models @6 :List(Text);   # trained models held
  ratingsOnly @7 :Bool;    # every stored event is an explicit rating
  trainBytes @8 :UInt64;   # encoded bytes of the blocks sent in the last training run
  modelVersion @9 :UInt64; # version of the model it serves; 0: none yet
  logSeq @10 :UInt64;      # sequence number of its last log record (0: none, or no log)
  snapshotSeq @11 :UInt64; # last log record its newest snapshot covers (0: none)
  logBytes @12 :UInt64;    # bytes of its log segments on disk
}

struct StatusReply {
  map @0 :Cluster.PartitionMap;
  partitions @1 :List(PartitionStatus);
  missing @2 :List(UInt32);  # partitions that did not answer in time
}

struct TrainRequest {
  algo @0 :Text;           # all | mf | implicit-als | itemknn | userknn | content | popular
  factors @1 :UInt32;      # 0: default
  iterations @2 :UInt32;   # 0: default
  seed @3 :UInt64 = 42;
  easeMaxItems @4 :UInt64; # 0: default (core::default_ease_max_items)
  noTune @5 :Bool;         # all: the default blend, no tuning (core/tuning.hpp)
  ialsAlpha @6 :Float32;   # 0: default; set by the trainer after tuning
  weights @7 :Text;        # all: the blend "name=weight,..." (no tuning); "": tuned
  ialsReg @8 :Float32;     # 0: default; set by the trainer after tuning
  knnNeighbors @9 :UInt32; # 0: default; set by the trainer after tuning
}

struct TrainReply {
  algo @0 :Text;
  seconds @1 :Float64;
  bytesSent @2 :UInt64;    # factor / statistics payload bytes exchanged between shards
  messages @3 :UInt64;
  loss @4 :List(Float64);  # implicit ALS objective after the last iteration
  phases @5 :List(TrainPhase);  # wall time per phase, in the order they ran
  notes @6 :List(Text);    # what the run left out and why (e.g. EASE beyond its limit)
  blend @7 :Text;          # the served blend, "name=weight,..."
  tuning @8 :TuningReport; # unset: not tuned
}

# core::tuning_report
struct TuningTrial {
  what @0 :Text;
  ndcg @1 :Float64;
  hitRate @2 :Float64;
  seconds @3 :Float64; # training and validating this setting (blends: 0)
}

struct TuningReport {
  weights @0 :Text;
  ialsAlpha @1 :Float32;
  easeLambda @2 :Float32;
  defaultWeights @3 :Text;
  validation @4 :Text;
  sampleUsers @5 :UInt64;
  validationUsers @6 :UInt64;
  items @7 :UInt64;
  defaults @8 :TuningTrial;
  best @9 :TuningTrial;
  variants @10 :List(TuningTrial);
  blendsTried @11 :UInt64;
  seconds @12 :Float64;
  ialsReg @13 :Float32;
  knnNeighbors @14 :UInt32;
}

struct TrainPhase {
  name @0 :Text;           # build | popular | content | knn | ials | mf | publish
  seconds @1 :Float64;
}

struct RecommendRequest {
  user @0 :Text;
  n @1 :UInt32 = 10;
  algo @2 :Text;           # "" = hybrid
}

struct ComponentScore {
  name @0 :Text;
  raw @1 :Float32;
  contribution @2 :Float32;
}

struct Recommendation {
  item @0 :Text;
  score @1 :Float32;
  components @2 :List(ComponentScore);
  because @3 :List(Text);
  becauseFrom @4 :Text;             # the component behind `because`: itemknn or content
}

struct RecommendReply {
  user @0 :Text;
  items @1 :List(Recommendation);
  partial @2 :Bool;                 # some partitions did not answer in time
  missingPartitions @3 :List(UInt32);
  coldStart @4 :List(Text);         # components scoring by popularity for this user
  note @5 :Text;                    # why, for a user the model does not know yet
}

struct SimilarRequest {
  item @0 :Text;
  n @1 :UInt32 = 10;
}

struct PopularRequest {
  n @0 :UInt32 = 10;
  trending @1 :Bool;                # by trending score instead of users
}

struct PopularReply {
  trending @0 :Bool;
  items @1 :List(Scored);           # score desc, then item id asc
  partial @2 :Bool;
  missingPartitions @3 :List(UInt32);
  now @4 :Int64;                    # trending: the time the scores are at (the
                                    # latest event time seen)
  struct Scored {
    item @0 :Text;
    score @1 :Float64;              # users with an event on it, or trending score
  }
}

struct SimilarReply {
  item @0 :Text;
  neighbors @1 :List(Similar);
  partial @2 :Bool;
  missingPartitions @3 :List(UInt32);
  note @4 :Text;                    # why there are none (an item newer than the model)
  struct Similar {
    item @0 :Text;
    similarity @1 :Float32;
  }
}
