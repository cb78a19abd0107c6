# One partition's complete state as it goes to disk (actors/codec_snapshot.hpp):
# the store as plain values (dist::store_image) and the model it serves, if
# any. The file layer wraps the message in its own header and checksum; this
# is the message inside, as a flat array of words.
# Numeric arrays are List(<fixed-width type>): contiguous little-endian values
# (floats bit for bit), no per-element pointer. Fields are never renumbered;
# a new field takes the next ordinal.
@0xa01fb3b52bea0403;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("shardrec::wire");

using Events = import "events.capnp";
using Query = import "query.capnp";
using Train = import "train.capnp";

const snapshotMagic :UInt32 = 0x31535253;  # "SRS1" read little-endian

# Mirrors shardrec::core::merge_policy.
enum MergePolicy {
  last @0;
  sum @1;
  max @2;
  confidence @3;
}

# The events of one side of a store, column by column: event k is entry k of
# every column. user / item are indices into the store's id lists (users and
# itemRefs on the user side, userRefs and items on the item side), device /
# location into devices / locations.
struct EventColumns {
  user @0 :List(UInt32);
  item @1 :List(UInt32);
  value @2 :List(Float32);
  type @3 :List(Events.EventType);
  device @4 :List(UInt16);
  location @5 :List(UInt16);
  timestamp @6 :List(Int64);
}

# dist::store_image: what a partition_store holds except what a build
# computes. The matrices are rebuilt from the first builtUserEvents /
# builtItemEvents events in the shape builtUsers x builtItemRefs /
# builtUserRefs x builtItems (all 0 before the first build), the recent items
# from the user-side events after the build.
struct StoreImage {
  partition @0 :UInt32;
  partitions @1 :UInt32;
  users @2 :List(Text);                  # the id maps, in index order
  itemRefs @3 :List(Text);
  items @4 :List(Text);
  userRefs @5 :List(Text);
  devices @6 :List(Text);                # devices[0] = "" (unknown)
  locations @7 :List(Text);              # locations[0] = "" (unknown)
  userSide @8 :EventColumns;
  itemSide @9 :EventColumns;
  itemMeta @10 :List(Events.ItemAttributes);  # indexed like items, item unset;
                                              # at most items.length entries
  built @11 :Bool;
  builtOnce @12 :Bool;
  builtPolicy @13 :MergePolicy;
  binarized @14 :Bool;
  builtUsers @15 :UInt64;
  builtItemRefs @16 :UInt64;
  builtUserEvents @17 :UInt64;
  builtUserRefs @18 :UInt64;
  builtItems @19 :UInt64;
  builtItemEvents @20 :UInt64;
}

# Lists of (id, weight) pairs in CSR over a dictionary of ids: list r is the
# next length[r] entries of id / weight, id[k] an index into dictionary.
struct IdWeightLists {
  dictionary @0 :List(Text);
  length @1 :List(UInt32);
  id @2 :List(UInt32);
  weight @3 :List(Float32);              # aligned with id
}

# dist::partition_item_models. Per-item arrays are empty (component not
# trained) or have one row per item.
struct ItemModels {
  items @0 :List(Text);
  ialsFactors @1 :UInt64;
  ialsItem @2 :List(Float32);            # items x ialsFactors, row-major
  mfFactors @3 :UInt64;
  mfMu @4 :Float32;
  mfItem @5 :List(Float32);              # items x mfFactors, row-major
  mfItemBias @6 :List(Float32);
  knnReverse @7 :IdWeightLists;          # (source item, similarity) per item
  popularity @8 :List(Float32);
  content @9 :Train.SparseRows;
  easeItems @10 :List(Text);             # EASE catalogue (empty: no EASE)
  easeWeight @11 :List(Float32);         # easeItems x items, row-major
}

# dist::partition_user_models (rows in the order of the store's users).
struct UserModels {
  ialsFactors @0 :UInt64;
  ialsUser @1 :List(Float32);
  mfFactors @2 :UInt64;
  mfUser @3 :List(Float32);
  mfUserBias @4 :List(Float32);
  contentProfiles @5 :Train.SparseRows;  # content_user_state::profiles
  contentRefVectors @6 :Train.SparseRows; # content_user_state::ref_vectors
  ialsFold @7 :IalsFoldIn;               # unset: no fold-in
  ialsFolded @8 :List(FoldedRow);        # users whose events were folded in
  mfFold @9 :MfFoldIn;                   # unset: no MF fold-in
  mfFolded @10 :List(FoldedRow);         # factors, then the bias
  contentVocabulary @11 :Vocabulary;     # unset: no content model
}

struct Vocabulary {                      # dist::content_vocabulary
  nDocuments @0 :UInt64;
  features @1 :List(Text);               # ascending
  df @2 :List(UInt32);
  idf @3 :List(Float32);
}

# dist::mf_fold_in_data.
struct MfFoldIn {
  factors @0 :UInt32;
  reg @1 :Float32;
  mu @2 :Float64;
  items @3 :List(Float64);   # rows x (factors + 1), row-major
  refRow @4 :List(UInt32);   # item_refs index -> row of items; 0xFFFFFFFF: none
}

# dist::ials_fold_in_data: what a partition folds its users' new events in with.
struct IalsFoldIn {
  factors @0 :UInt32;
  reg @1 :Float32;
  alpha @2 :Float32;
  regExponent @3 :Float32;
  cgSteps @4 :Int32;
  exactSolve @5 :Bool;
  binary @6 :Bool;
  nItems @7 :UInt64;
  items @8 :List(Float32);   # rows x factors, row-major
  refRow @9 :List(UInt32);   # item_refs index -> row of items; 0xFFFFFFFF: none
  gram @10 :List(Float32);   # factors x factors
  nUsers @11 :UInt64;        # for items newer than the model: the user count
  userGram @12 :List(Float32); # and the Gram of the final user factors (empty: none)
}

struct FoldedRow {
  user @0 :UInt32;           # store.users() index
  factors @1 :List(Float32);
}

# std::vector<dist::entity_neighbors>: list r is entities[r]'s neighbours.
struct NeighborLists {
  entities @0 :List(Text);
  lists @1 :IdWeightLists;               # one list per entity
}

# What a partition serves (actors/codec_snapshot.hpp served_model_image).
struct ServedModel {
  items @0 :ItemModels;
  spec @1 :Query.BlendSpec;
  users @2 :UserModels;
  neighbors @3 :NeighborLists;           # unset: no item-kNN lists
  # 1 + the largest feature id in items.content (0: none). The scorer's
  # content index is dense in the feature id: a reader checks this against
  # the vectors before it builds one.
  contentFeatures @4 :UInt32;
}

struct PartitionSnapshot {
  magic @0 :UInt32;                      # snapshotMagic
  logSeq @1 :UInt64;                     # the last log record it covers
  modelVersion @2 :UInt64;               # 0: no model
  ratingsOnly @3 :Bool;
  scaleMin @4 :Float32;
  scaleMax @5 :Float32;
  store @6 :StoreImage;
  model @7 :ServedModel;                 # unset: no model
  epochs @8 :List(UInt64);               # the log's epoch history: epoch k
  epochStarts @9 :List(UInt64);          # starts at record epochStarts[k]
}
