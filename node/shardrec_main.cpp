// `shardrec`: the command-line tool. Dispatches on the subcommand.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "node/cli.hpp"

namespace {

const char* usage = R"(shardrec - a sharded recommendation engine

usage: shardrec COMMAND [OPTIONS]        (shardrec COMMAND --help for its options)

commands:
  demo    train on sample data (../shared/data/ml-100k if present, else generated)
          and print recommendations with explanations and similar items
  eval    evaluate an algorithm on train/test files:
            shardrec eval --local --train FILE --test FILE --algo mf --json
  gen     write a deterministic synthetic events CSV with latent structure:
            shardrec gen --users 6000 --items 4000 --events 1000000 --seed 1 --out ev.csv

cluster commands (to any node of a running cluster):
  shardrec --cluster HOST:PORT status | nodes | partitions   [--json]
  shardrec --cluster HOST:PORT load FILE [--format F] [--items FILE]
  shardrec --cluster HOST:PORT event USER ITEM [--type view|click|cart|purchase|rating|cancel] [--value V]
  shardrec --cluster HOST:PORT train [--algo all|implicit-als|mf|itemknn|content|popular]
  shardrec --cluster HOST:PORT recommend USER [-n 10] [--json]
  shardrec --cluster HOST:PORT similar ITEM [-n 10] [--json]
  shardrec --cluster HOST:PORT popular [-n 10] [--trending] [--json]
  shardrec --cluster HOST:PORT eval --test FILE [--format F] [--k 10] [--json]
  shardrec --cluster HOST:PORT bench [--queries N] [--window W] [--users U]
  (shardrec --cluster HOST:PORT COMMAND --help for its options; start nodes with
   shardrec-node or cluster/local.sh up N)

algorithms: baseline popular trending itemknn userknn mf implicit-als ease content hybrid
)";

} // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")
      || !std::strcmp(argv[1], "help")) {
    std::fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--cluster")) {
    if (argc < 4) {
      std::fputs("shardrec: usage: shardrec --cluster HOST:PORT COMMAND [OPTIONS]\n",
                 stderr);
      return 2;
    }
    return shardrec::node::cmd_cluster(argv[2], argv[3],
                                       std::vector<std::string>(argv + 4, argv + argc));
  }
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "gen")
    return shardrec::node::cmd_gen(args);
  if (cmd == "eval")
    return shardrec::node::cmd_eval(args);
  if (cmd == "demo")
    return shardrec::node::cmd_demo(args);
  std::fprintf(stderr, "shardrec: unknown command '%s'\n\n%s", cmd.c_str(), usage);
  return 2;
}
