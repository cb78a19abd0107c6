// The etcd client against a real etcd (Debian's etcd-server) on free ports.
#include "etcd/client.hpp"

#include <thread>

#include <gtest/gtest.h>

#include "tests/cluster/local_cluster.hpp"

namespace shardrec {
namespace {

using testing::etcd_server;
using testing::temp_dir;

etcd::client connect(const etcd_server& server) {
  auto eps = etcd::parse_endpoints(server.endpoint());
  EXPECT_TRUE(eps.ok());
  return etcd::client(*eps);
}

TEST(EtcdEndpoints, ParsesListsAndNamesWhatIsWrong) {
  auto eps = etcd::parse_endpoints("http://10.0.0.1:2379,10.0.0.2:2380/");
  ASSERT_TRUE(eps.ok()) << eps.err().message;
  ASSERT_EQ(eps->size(), 2u);
  EXPECT_EQ((*eps)[0].host, "10.0.0.1");
  EXPECT_EQ((*eps)[0].port, 2379);
  EXPECT_EQ((*eps)[1].host, "10.0.0.2");
  EXPECT_EQ((*eps)[1].port, 2380);
  EXPECT_EQ(etcd::to_string(*eps), "http://10.0.0.1:2379,http://10.0.0.2:2380");
  for (const char* bad : {"", ",", "http://host", "host:0", "host:99999", "host:12x"}) {
    auto r = etcd::parse_endpoints(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.err().message.find("--etcd"), std::string::npos) << r.err().message;
  }
  auto tls = etcd::parse_endpoints("https://h:2379");
  ASSERT_FALSE(tls.ok());
  EXPECT_NE(tls.err().message.find("TLS"), std::string::npos);
}

TEST(EtcdClient, PutGetListEraseAndGuardedPuts) {
  temp_dir dir;
  etcd_server server(dir.path());
  auto c = connect(server);

  auto missing = c.get("/t/none");
  ASSERT_TRUE(missing.ok()) << missing.err().message;
  EXPECT_FALSE(missing->has_value());

  // Binary-safe keys and values (base64 on the wire).
  const std::string value("a\0b\xff{\"json\": 1}", 15);
  auto rev = c.put("/t/a", value);
  ASSERT_TRUE(rev.ok()) << rev.err().message;
  auto got = c.get("/t/a");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->value, value);
  EXPECT_EQ((*got)->mod_revision, *rev);
  EXPECT_EQ((*got)->create_revision, *rev);
  EXPECT_EQ((*got)->version, 1);

  ASSERT_TRUE(c.put("/t/b", "2").ok());
  ASSERT_TRUE(c.put("/t0", "outside the prefix").ok());
  auto all = c.list("/t/");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].key, "/t/a");
  EXPECT_EQ((*all)[1].key, "/t/b");

  // A guarded put: only at the expected mod revision; 0 = must not exist.
  auto stale = c.put_if("/t/a", "x", *rev - 1);
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(*stale);
  EXPECT_EQ((*c.get("/t/a"))->value, value);
  auto fresh = c.put_if("/t/a", "x", *rev);
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(*fresh);
  EXPECT_EQ((*c.get("/t/a"))->value, "x");
  EXPECT_EQ((*c.get("/t/a"))->version, 2);
  auto create = c.put_if("/t/new", "n", 0);
  ASSERT_TRUE(create.ok());
  EXPECT_TRUE(*create);
  auto again = c.put_if("/t/new", "n2", 0);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);

  auto erased = c.erase("/t/b");
  ASSERT_TRUE(erased.ok());
  EXPECT_EQ(*erased, 1);
  EXPECT_EQ(*c.erase("/t/b"), 0);
  EXPECT_EQ(c.list("/t/")->size(), 2u); // a, new
}

TEST(EtcdClient, LeaseKeysVanishWhenTheLeaseExpiresOrIsRevoked) {
  temp_dir dir;
  etcd_server server(dir.path());
  auto c = connect(server);
  auto lease = c.grant(1);
  ASSERT_TRUE(lease.ok()) << lease.err().message;
  ASSERT_TRUE(c.put("/l/kept", "1", *lease).ok());
  EXPECT_EQ((*c.get("/l/kept"))->lease, *lease);
  // Kept alive for 2.5 s with a 1 s TTL: still there.
  for (int i = 0; i < 8; ++i) {
    auto ttl = c.keep_alive(*lease);
    ASSERT_TRUE(ttl.ok()) << ttl.err().message;
    EXPECT_GT(*ttl, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  EXPECT_TRUE(c.get("/l/kept")->has_value());
  // Not kept alive: gone within TTL plus etcd's expiry sweep.
  bool gone = false;
  for (int i = 0; i < 60 && !gone; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    gone = !c.get("/l/kept")->has_value();
  }
  EXPECT_TRUE(gone);
  auto expired = c.keep_alive(*lease);
  ASSERT_TRUE(expired.ok()) << expired.err().message;
  EXPECT_EQ(*expired, 0);

  auto second = c.grant(30);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(c.put("/l/revoked", "1", *second).ok());
  EXPECT_TRUE(c.revoke(*second).ok());
  EXPECT_FALSE(c.get("/l/revoked")->has_value());
  EXPECT_TRUE(c.revoke(*second).ok()); // not an error twice
  auto bogus = c.put("/l/x", "1", 12345);
  ASSERT_FALSE(bogus.ok());
  EXPECT_NE(bogus.err().message.find("lease not found"), std::string::npos)
      << bogus.err().message;
}

TEST(EtcdClient, TriesTheNextEndpointAndNamesEveryEndpointWhenNoneAnswers) {
  temp_dir dir;
  etcd_server server(dir.path());
  const int dead = testing::free_port();
  auto eps = etcd::parse_endpoints("http://127.0.0.1:" + std::to_string(dead) + ","
                                   + server.endpoint());
  ASSERT_TRUE(eps.ok());
  etcd::client c(*eps, std::chrono::milliseconds(500));
  ASSERT_TRUE(c.put("/e/k", "v").ok());
  EXPECT_EQ((*c.get("/e/k"))->value, "v");

  auto none = etcd::parse_endpoints("http://127.0.0.1:" + std::to_string(dead));
  etcd::client d(*none, std::chrono::milliseconds(500));
  auto r = d.get("/e/k");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, core::errc::io_error);
  EXPECT_NE(r.err().message.find(std::to_string(dead)), std::string::npos)
      << r.err().message;
}

} // namespace
} // namespace shardrec
