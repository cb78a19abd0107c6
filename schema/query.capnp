# Query-time messages of dist/recommend.hpp phase C: the user profile, the
# blend statistics, the blend spec a coordinator hands to the partitions and
# the node batches of dist/node_query.hpp. Every frame's root is a QueryFrame
# (magic + union tag, as TrainFrame in train.capnp). Fields are never
# renumbered.
@0x93ea8f7921902037;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("shardrec::wire");

using Train = import "train.capnp";

const queryFrameMagic :UInt32 = 0x31515253;  # "SRQ1" read little-endian

enum BlendKind {
  implicitAls @0;
  itemknn @1;
  content @2;
  popular @3;
  mf @4;
  ease @5;
}

struct BlendComponent {
  name @0 :Text;
  kind @1 :BlendKind;
  weight @2 :Float32;
}

struct BlendSpec {
  components @0 :List(BlendComponent);   # hybrid part order
}

struct UserProfile {
  user @0 :Text;
  seen @1 :List(Text);
  seenValue @2 :List(Float32);           # aligned with seen
  seenContent @3 :Train.SparseRows;      # no rows, or one row per seen item
  ials @4 :List(Float32);
  mfKnown @5 :Bool;
  mf @6 :List(Float32);
  mfBias @7 :Float32;
  content @8 :Train.SparseVector;
}

struct ScoreMoments {
  count @0 :UInt64;
  sum @1 :Float64;
  sumSq @2 :Float64;
}

struct Phase1Reply {
  partition @0 :UInt32;
  moments @1 :List(ScoreMoments);        # one per blend component
}

struct BlendStats {
  mean @0 :List(Float32);
  invStd @1 :List(Float32);              # aligned with mean
  missing @2 :List(UInt32);
}

struct BlendComponentScore {
  name @0 :Text;
  raw @1 :Float32;
  normalised @2 :Float32;
  contribution @3 :Float32;
}

struct Evidence {
  item @0 :Text;
  weight @1 :Float32;
}

struct BlendCandidate {
  item @0 :Text;
  score @1 :Float32;
  components @2 :List(BlendComponentScore);
  because @3 :List(Evidence);
  becauseFrom @4 :Text;
  # For the coordinator to choose `because` with the user's content evidence:
  knnEvidence @5 :List(Evidence);        # the user's items j with sim(j, item)
  content @6 :Train.SparseVector;        # the item's content vector
  easeEvidence @7 :List(Evidence);       # the user's items i with B[i][item] > 0
}

# One node's share of phase C for many queries at once (dist/node_query.hpp):
# a coordinator sends each node one batch, the node one reply.
enum NodeQueryKind {
  removedScore @0;                       # was score (C1 of two rounds), removed;
                                         # ordinal reserved
  removedSelect @1;                      # was select (C2 of two rounds), removed;
                                         # ordinal reserved
  direct @2;                             # C1 + C2: profile, stats, n -> top n
  local @3;                              # C1 + C2 under the node's own stats:
                                         # profile, n -> moments, top n, bound
}

struct NodeQuery {
  query @0 :UInt64;                      # the coordinator's query id
  n @1 :UInt32;                          # direct, local
  kind @2 :NodeQueryKind;
  profile @3 :UserProfile;               # direct, local
  stats @4 :BlendStats;                  # direct (else unset)
}

struct NodeQueryBatch {
  partitions @0 :List(UInt32);           # believed hosted here, strictly ascending
  queries @1 :List(NodeQuery);
}

# dist::local_bound: how far a local answer's candidates can be from the
# node's top n under the global statistics.
struct LocalBound {
  local @0 :BlendStats;
  weights @1 :List(Float32);
  rawMin @2 :List(Float32);              # aligned with weights
  rawMax @3 :List(Float32);              # aligned with weights
  threshold @4 :Float32;
  complete @5 :Bool;
  hasNan @6 :Bool;
}

struct NodeAnswer {
  query @0 :UInt64;                      # the query id
  error @1 :Text;                        # non-empty: failed here
  partitions @2 :List(UInt32);           # covered, strictly ascending
  moments @3 :List(Phase1Reply);         # local: none or one per partition
  candidates @4 :List(BlendCandidate);   # direct, local: rank order
  bound @5 :LocalBound;                  # local (else unset)
}

struct NodeQueryReply {
  answers @0 :List(NodeAnswer);          # aligned with the batch's queries
}

struct QueryFrame {
  magic @0 :UInt32;                      # queryFrameMagic
  union {
    blendSpec @1 :BlendSpec;
    userProfile @2 :UserProfile;
    reserved3 @3 :Void;                  # was phase1Reply, removed; ordinal reserved
    blendStats @4 :BlendStats;
    reserved5 @5 :Void;                  # was phase2Reply, removed; ordinal reserved
    reserved6 @6 :Void;                  # was userQuery, removed; ordinal reserved
    nodeQueryBatch @7 :NodeQueryBatch;
    nodeQueryReply @8 :NodeQueryReply;
  }
}
