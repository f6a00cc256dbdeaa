// bevkd-train: stage two of bevkd (DESIGN.md). Subcommands:
//   loss-probe   evaluate one distillation loss on .npy tensors (spec/loss_probe.md)
// (`train` and `eval` join here.)
//
// Thin main: each subcommand is one add_<name>() that declares its CLI11 options into a typed
// options struct and returns the function that runs it; main() parses, runs the chosen one and
// maps failures to exit codes. A subcommand's own contract may fix its exit codes (loss-probe:
// 0 / 1 / 2, so a CLI parse error of loss-probe is exit 2).
#include <CLI/CLI.hpp>

#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "train/probe/probe.h"

namespace {

struct Subcommand {
  CLI::App* app = nullptr;
  std::function<int()> run;
  int parse_error_code = 1;  // exit code for a command-line error of this subcommand
};

Subcommand add_loss_probe(CLI::App& app) {
  auto opts = std::make_shared<bevkd::train::probe::LossProbeOptions>();
  Subcommand s;
  s.app = app.add_subcommand("loss-probe", "Evaluate one distillation loss on .npy tensors (spec/loss_probe.md)");
  s.app->add_option("--loss", opts->loss, "loss name (see --list)");
  s.app->add_option("--case", opts->case_dir, "case directory: <input>.npy files and an optional params.json");
  s.app->add_option("--out", opts->out_dir, "directory for values.json, gradients and debug arrays (created)");
  s.app->add_flag("--grad", opts->grad, "write grad_*.npy (float64) for each gradient the loss lists; needs --out");
  s.app->add_flag("--list", opts->list, "list the losses with their inputs and parameters");
  s.app->add_flag("--json", opts->json, "with --list: as JSON");
  s.run = [opts] { return bevkd::train::probe::run_loss_probe(*opts, std::cout, std::cerr); };
  s.parse_error_code = 2;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bevkd-train: stage two of bevkd (camera student, distillation losses)"};
  app.require_subcommand(1);
  std::vector<Subcommand> subcommands;
  subcommands.push_back(add_loss_probe(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help
    for (const Subcommand& s : subcommands)
      if (s.app->parsed()) {
        std::cerr << s.app->get_name() << ": " << e.what() << "\n";
        return s.parse_error_code;
      }
    return app.exit(e);
  }
  for (const Subcommand& s : subcommands)
    if (s.app->parsed()) return bevkd::run_main("bevkd-train", s.run);
  return 1;
}
