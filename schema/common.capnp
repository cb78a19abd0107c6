# Types shared by every shardrec protocol. Field numbers are never reused.
@0xd8100f8019f102ce;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("shardrec::wire");

# Mirrors shardrec::core::errc.
enum ErrorCode {
  ok @0;
  ioError @1;
  parseError @2;
  outOfRange @3;
  invalidArgument @4;
  unknownId @5;
  badMessage @6;
}

struct Error {
  code @0 :ErrorCode;
  message @1 :Text;
}
