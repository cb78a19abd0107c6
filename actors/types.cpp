// Registration of the message types that cross node boundaries, and the
// names of the typed training protocol (actors/train_steps.hpp).
#include <random>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>

#include "actors/frame.hpp"
#include "actors/interfaces.hpp"
#include "actors/train_steps.hpp"

namespace shardrec::actors {

std::string to_string(const train_step& s) {
  static const char* kinds[] = {
      "build",     "popular",    "content_df", "content_vectors", "content_users",
      "knn_scale", "knn_rows",   "knn_gather", "knn_lists",       "knn_done",
      "als_init",  "als_send",   "als_solve",  "publish",         "abort",
      "als_keep",  "ease_items", "ease_rows",  "ease_columns",    "tune_sample",
      "als_stats"};
  if (!valid(s))
    return "unknown step";
  std::string out = kinds[static_cast<int>(s.kind)];
  switch (s.kind) {
    case step_kind::als_init:
    case step_kind::als_send:
    case step_kind::als_solve:
      out += s.model == als_model::ials ? " ials" : " mf";
      if (s.kind != step_kind::als_init)
        out += s.side == als_half::users ? " users" : " items";
      if (s.then == after_solve::send)
        out += "+send";
      if (s.then == after_solve::loss)
        out += "+loss";
      break;
    case step_kind::build:
      out += s.merge == build_merge::last  ? " last"
             : s.merge == build_merge::sum ? " sum"
                                           : " confidence";
      break;
    default: break;
  }
  return out;
}

std::string to_string(block_kind k) {
  static const char* names[] = {"content_vectors", "rater_rows", "reverse", "ials_group",
                                "mf_group"};
  return valid(k) ? names[static_cast<int>(k)] : "unknown block kind";
}

std::uint64_t new_batch_id() {
  thread_local std::mt19937_64 gen{(std::uint64_t{std::random_device{}()} << 32)
                                   ^ std::random_device{}()};
  std::uint64_t id = 0;
  while (id == 0)
    id = gen();
  return id;
}

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<frame>("shardrec_frame");
  cfg.add_message_type<train_step>("shardrec_train_step");
  cfg.add_message_type<block_kind>("shardrec_block_kind");
  cfg.add_message_type<std::vector<caf::actor>>("std::vector<@actor>");
  cfg.add_message_type<std::vector<std::uint32_t>>("std::vector<@u32>");
  cfg.add_message_type<std::vector<std::uint64_t>>("std::vector<@u64>");
  cfg.add_message_type<std::vector<frame>>("std::vector<shardrec_frame>");
  cfg.add_message_type<std::vector<std::string>>("std::vector<@str>");
  cfg.add_message_type<std::vector<float>>("std::vector<float>");
}

} // namespace shardrec::actors
