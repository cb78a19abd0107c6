// Subcommands of the `shardrec` command-line tool that run in this process
// (no cluster): gen, eval --local, demo. Each takes the arguments after the
// subcommand name and returns the process exit code.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace shardrec::core {
struct tuning_report;
}

namespace shardrec::node {

// The `tuning` object of `eval --local --json` and `train --json`, and its
// lines for a terminal.
nlohmann::json tuning_json(const core::tuning_report& t);
void print_tuning(const core::tuning_report& t);

int cmd_gen(const std::vector<std::string>& args);
int cmd_eval(const std::vector<std::string>& args);
int cmd_demo(const std::vector<std::string>& args);

// `shardrec --cluster WHERE CMD ARGS...`: status | nodes | partitions | load.
int cmd_cluster(const std::string& where, const std::string& cmd,
                const std::vector<std::string>& args);

} // namespace shardrec::node
