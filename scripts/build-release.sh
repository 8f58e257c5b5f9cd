#!/usr/bin/env bash
# The release build of `conductor` to install on nodes (docs/agent.md#memory).
#
#   scripts/build-release.sh [extra `swift build` arguments, e.g. --scratch-path DIR]
#
# Compared with a plain `swift build -c release` it keeps the idle agent near 17 MiB of
# resident memory instead of 29 MiB (docs/benchmarks.md, agent section):
# - --static-swift-stdlib: no libFoundation.so/libswiftCore.so/ICU shared libraries, whose
#   start-up alone maps ~17 MiB in any Swift program that imports Foundation;
# - lld with packed relative relocations (`-z pack-relative-relocs`, still a PIE) and no
#   `--export-dynamic`: the loader no longer reads 2.5 MiB of .rela.dyn and ~1.2 MiB of
#   dynamic symbol tables at start;
# - `--symbol-ordering-file scripts/conductor.order`: the ~5,000 functions an idle agent
#   executes (1.4 MiB of code) are placed together, instead of being spread over 24 MiB of
#   .text where every page touched also maps its 64 KiB fault-around neighbourhood.
#   Regenerate the list with scripts/profile-symbol-order.sh when the agent's code
#   changes a lot; names missing from the binary are ignored.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
exec swift build -c release --static-swift-stdlib --product conductor \
    -Xswiftc -use-ld=lld \
    -Xlinker -z -Xlinker pack-relative-relocs \
    -Xlinker --no-export-dynamic \
    -Xlinker --symbol-ordering-file="$ROOT/scripts/conductor.order" -Xlinker --no-warn-symbol-ordering \
    "$@"
