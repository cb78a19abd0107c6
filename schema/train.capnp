# Training-time messages between partitions: the blocks and partials of
# dist/knn.hpp (item-kNN by row exchange: phases S, R), dist/recommend.hpp
# (phase A) and dist/als.hpp.
# Every frame's root is a TrainFrame: the magic tells a training frame from
# any other, the union tag tells which message it holds (actors/codec_dist.cpp
# rejects a frame whose tag is not the one the caller expects).
# Numeric arrays are List(<fixed-width type>): contiguous little-endian
# values, 4 or 8 bytes each, no per-element pointer. Fields are never
# renumbered; a new field takes the next ordinal.
@0x9e744ab708f22078;

using Cxx = import "/capnp/c++.capnp";
using Events = import "events.capnp";
$Cxx.namespace("shardrec::wire");

const trainFrameMagic :UInt32 = 0x31545253;  # "SRT1" read little-endian

enum KnnSide {
  item @0;
  user @1;
}

enum SimilarityKind {
  cosine @0;
  adjustedCosine @1;
  pearson @2;
  pearsonBaseline @3;
  jaccard @4;
}

struct ScalePartial {
  partition @0 :UInt32;
  maxAbs @1 :Float64;
  raters @2 :UInt64;
  cells @3 :UInt64;          # 0 from nodes before the rounds
}

# The argument of the kNN rows, gather and lists steps (dist::knn_round).
struct KnnRound {
  scale @0 :Float64;
  round @1 :UInt32;
  rounds @2 :UInt32;
}

# The quantised cells of one partition's raters (dist::rater_rows_block):
# row r owns the next rowLength[r] entries of entity (indices into ids) and q.
# own: the cells on the receiving node's entities; else those on round
# `round`'s. rounds is never 0 (0: a block of the one-round exchange of
# nodes before the rounds, which every node held whole; refused).
struct RaterRowsBlock {
  side @0 :KnnSide;
  kind @1 :SimilarityKind;
  from @2 :UInt32;
  to @3 :UInt32;
  ids @4 :List(Text);
  rowLength @5 :List(UInt32);
  entity @6 :List(UInt32);
  q @7 :List(Int64);         # aligned with entity
  round @8 :UInt32;
  rounds @9 :UInt32;
  own @10 :Bool;
}

# Triples (ids[target[t]], ids[source[t]], similarity[t]).
struct ReverseBlock {
  from @0 :UInt32;
  to @1 :UInt32;
  ids @2 :List(Text);
  target @3 :List(UInt32);
  source @4 :List(UInt32);
  similarity @5 :List(Float32);
}

# Features strictly ascending; weight aligned with feature.
struct SparseVector {
  feature @0 :List(UInt32);
  weight @1 :List(Float32);
}

# Several sparse vectors in CSR: vector r is the next length[r] entries of
# feature / weight.
struct SparseRows {
  length @0 :List(UInt32);
  feature @1 :List(UInt32);
  weight @2 :List(Float32);
}

struct ContentDfPartial {
  partition @0 :UInt32;
  nDocuments @1 :UInt64;
  features @2 :List(Text);   # strictly ascending (byte-wise)
  df @3 :List(UInt32);       # aligned with features
}

struct ContentVocabulary {
  nDocuments @0 :UInt64;
  features @1 :List(Text);   # strictly ascending; feature id = position
  df @2 :List(UInt32);
  idf @3 :List(Float32);
}

struct ContentVectors {
  from @0 :UInt32;
  to @1 :UInt32;
  items @2 :List(Text);
  vectors @3 :SparseRows;    # one row per item
}

# ---- dist/als.hpp (iALS and MF by alternating least squares)

enum AlsSide {
  users @0;
  items @1;
}

struct AlsCensus {
  from @0 :UInt32;
  users @1 :UInt64;
  items @2 :UInt64;
  ratings @3 :UInt64;
  ratingSum @4 :Float64;
}

struct AlsGlobals {
  partitions @0 :UInt32;
  nUsers @1 :UInt64;
  nItems @2 :UInt64;
  mu @3 :Float64;
}

# Rows of one side: ids.length x width values, row-major.
struct IalsFactorBlock {
  from @0 :UInt32;
  to @1 :UInt32;
  side @2 :AlsSide;
  version @3 :UInt32;
  width @4 :UInt32;
  ids @5 :List(Text);
  values @6 :List(Float32);
}

# As IalsFactorBlock in double: the MF trainer's state is double.
struct MfFactorBlock {
  from @0 :UInt32;
  to @1 :UInt32;
  side @2 :AlsSide;
  version @3 :UInt32;
  width @4 :UInt32;
  ids @5 :List(Text);
  values @6 :List(Float64);
}

# k x k row-major Gram matrix; from is ignored in a total.
struct AlsGram {
  from @0 :UInt32;
  side @1 :AlsSide;
  version @2 :UInt32;
  k @3 :UInt32;
  gram @4 :List(Float64);
}

struct AlsLossPartial {
  from @0 :UInt32;
  version @1 :UInt32;
  loss @2 :Float64;
}

# ---- dist/als.hpp, Gibbs sampler (G1 / G2)

# core::exact_sum: a two's-complement 128-bit multiple of 2^-64.
struct ExactSum {
  high @0 :UInt64;
  low @1 :UInt64;
  poisoned @2 :Bool;
}

# core::mf_row_moments: n rows, their sum (D) and sum of outer products
# (D x D, row-major); both lists empty when n is 0.
struct MfMoments {
  n @0 :UInt64;
  sum @1 :List(ExactSum);
  outer @2 :List(ExactSum);
}

struct GibbsStats {
  from @0 :UInt32;
  version @1 :UInt32;
  cells @2 :UInt64;
  sse @3 :ExactSum;
  users @4 :MfMoments;
  items @5 :MfMoments;
}

# One side's prior for a sweep: noise precision, Lambda (D x D row-major),
# Lambda mu (D).
struct GibbsPrior {
  alpha @0 :Float64;
  lambda @1 :List(Float64);
  lambdaMu @2 :List(Float64);
}

struct GibbsPriors {
  sweep @0 :UInt32;
  users @1 :GibbsPrior;
  items @2 :GibbsPrior;
}

# ---- dist/ease.hpp (EASE)

# E1 reply (a partition's items with a cell) and E3 argument (the catalogue,
# in (stable_hash, id) order).
struct EaseItems {
  items @0 :List(Text);
}

# E3 reply: the owned users' rows over catalogue positions, CSR.
struct EaseRows {
  length @0 :List(UInt32);
  position @1 :List(UInt32);
}

# E5 argument: columns of B for some owned items, items.length x n values.
struct EaseColumns {
  items @0 :List(Text);
  weights @1 :List(Float32);
}

# ---- core/tuning.hpp: a partition's share of the tuning sample

# Events of the owned users in the sample (ids into users / items), and the
# side information of owned items that a sampled user touched.
struct TuningSample {
  users @0 :List(Text);
  items @1 :List(Text);
  user @2 :List(UInt32);      # per event, into users
  item @3 :List(UInt32);      # per event, into items
  value @4 :List(Float32);
  type @5 :List(UInt8);       # core::event_type
  timestamp @6 :List(Int64);
  info @7 :List(Events.ItemAttributes);
}

# The argument of the tune_sample step.
struct TuningSampleRequest {
  nUsers @0 :UInt64;
  maxUsers @1 :UInt64;
}

struct TrainFrame {
  magic @0 :UInt32;          # trainFrameMagic
  union {
    reserved1 @1 :Void;        # was meanPartial, removed; ordinal reserved
    reserved2 @2 :Void;        # was biasBlock, removed; ordinal reserved
    scalePartial @3 :ScalePartial;
    reserved4 @4 :Void;        # was pairBlock, removed; ordinal reserved
    reserved5 @5 :Void;        # was totalsBlock, removed; ordinal reserved
    reverseBlock @6 :ReverseBlock;
    reserved7 @7 :Void;        # was entityNeighbors, removed; ordinal reserved
    reserved8 @8 :Void;        # was entityNeighborsList, removed; ordinal reserved
    contentDfPartial @9 :ContentDfPartial;
    contentVocabulary @10 :ContentVocabulary;
    contentVectors @11 :ContentVectors;
    alsCensus @12 :AlsCensus;
    alsGlobals @13 :AlsGlobals;
    ialsBlock @14 :IalsFactorBlock;
    mfBlock @15 :MfFactorBlock;
    gramPartial @16 :AlsGram;
    gramTotal @17 :AlsGram;
    lossPartial @18 :AlsLossPartial;
    raterRowsBlock @19 :RaterRowsBlock;
    easeItems @20 :EaseItems;
    easeRows @21 :EaseRows;
    easeColumns @22 :EaseColumns;
    tuningSample @23 :TuningSample;
    tuningSampleRequest @24 :TuningSampleRequest;
    gibbsStats @25 :GibbsStats;
    gibbsPriors @26 :GibbsPriors;
    knnRound @27 :KnnRound;
  }
}
