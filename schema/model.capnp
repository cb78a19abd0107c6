# Model state exchanged between shards during training and querying.
@0x8d64bf8c98df7efa;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("shardrec::wire");

enum Side {
  users @0;
  items @1;
}

# Dense rows of latent factors for a set of ids (row-major float32,
# ids.length x k values, little-endian), optionally with biases.
struct FactorBlock {
  side @0 :Side;
  k @1 :UInt32;
  ids @2 :List(Text);
  rows @3 :Data;
  biases @4 :List(Float32);   # empty or ids.length values
  sweep @5 :UInt32;           # which half-step produced these rows
}

# A k x k symmetric matrix (row-major float64), e.g. a partial Gram Y^T Y.
struct Gram {
  k @0 :UInt32;
  values @1 :Data;
  count @2 :UInt64;           # rows that went into the sum
}

# Partial item-item (or user-user) co-occurrence sufficient statistics
# computed from one partition's rows, for pairs whose first id the receiver owns.
struct PairStats {
  first @0 :Text;
  second @1 :Text;
  n @2 :UInt32;
  sxy @3 :Float64;
  sxx @4 :Float64;
  syy @5 :Float64;
  sx @6 :Float64;
  sy @7 :Float64;
}

struct PairStatsBlock {
  side @0 :Side;
  stats @1 :List(PairStats);
}

struct Neighbor {
  id @0 :Text;
  similarity @1 :Float32;
}

struct NeighborList {
  id @0 :Text;
  neighbors @1 :List(Neighbor);
}

# One partition's best items for a query, with per-component raw scores.
struct Candidate {
  item @0 :Text;
  score @1 :Float32;
  components @2 :List(Float32);   # same order as CandidateList.componentNames
}

struct CandidateList {
  partition @0 :UInt32;
  componentNames @1 :List(Text);
  candidates @2 :List(Candidate);
}
