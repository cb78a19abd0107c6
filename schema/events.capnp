# Events and item side information on their way into the cluster.
@0x96f0d30629701211;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("shardrec::wire");

enum EventType {
  view @0;
  click @1;
  cart @2;
  purchase @3;
  rating @4;
  cancel @5;
}

struct Event {
  user @0 :Text;
  item @1 :Text;
  value @2 :Float32;
  type @3 :EventType;
  timestamp @4 :Int64;   # seconds since the Unix epoch; 0 = unknown
  device @5 :Text;       # "" = unknown
  location @6 :Text;     # "" = unknown
}

struct EventBatch {
  events @0 :List(Event);
  ratingMin @1 :Float32 = 1.0;
  ratingMax @2 :Float32 = 5.0;
  hasScale @3 :Bool = true;  # false: the sender does not know the scale (keep the partition's)
  # The sender's id of this batch (0: none), the same when it sends the
  # batch again: a partition stores a batch it already stored only once.
  batchId @4 :UInt64;
}

struct IngestReply {
  accepted @0 :UInt64;
  rejected @1 :UInt64;
  problems @2 :List(Text);   # first few reasons, "event 3: empty user id"
}

struct ItemAttributes {
  item @0 :Text;
  title @1 :Text;
  genres @2 :List(Text);
  tags @3 :List(Text);
  text @4 :Text;
}

struct ItemBatch {
  items @0 :List(ItemAttributes);
  batchId @1 :UInt64;        # as EventBatch.batchId
}
