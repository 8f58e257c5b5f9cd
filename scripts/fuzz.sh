#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for a bounded time:
#   FrameDecoderFuzzer  the AMQP frame decoder (every byte a peer sends)
#   MeshJSONFuzzer      MeshValue(json:), the reader of every message body on the bus,
#                       checked against JSONDecoder (the reader it replaced)
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   (default 60 s each, both targets)
#
# Exits non-zero if libFuzzer finds a crash, a trap (a failed check) or a hang; the input
# that caused it is left in .build-fuzz/artifacts/<target>/. Reproduce one with
#   SWIFT_BACKTRACE=enable=no .build-fuzz/release/<target> .build-fuzz/artifacts/<target>/crash-…
# New interesting inputs accumulate in .build-fuzz/corpus/<target>/ (git-ignored); the
# committed seeds are in Fuzz/corpus/ (frames; regenerate with Fuzz/make-corpus.py) and
# Fuzz/json-corpus/ (bus bodies).
set -euo pipefail

seconds="${1:-60}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(FrameDecoderFuzzer MeshJSONFuzzer)
cd "$(dirname "$0")/.."

export CONDUCTOR_FUZZ=1   # makes Package.swift declare the fuzz targets
# Swift's backtracer would take the trap before libFuzzer can save the input.
export SWIFT_BACKTRACE=enable=no
# The frame corpus used to live at the top of .build-fuzz/corpus.
if compgen -G ".build-fuzz/corpus/*" > /dev/null && [[ ! -d .build-fuzz/corpus/FrameDecoderFuzzer ]]; then
    mkdir -p .build-fuzz/corpus.frames && find .build-fuzz/corpus -maxdepth 1 -type f -exec mv {} .build-fuzz/corpus.frames/ \;
    mkdir -p .build-fuzz/corpus && mv .build-fuzz/corpus.frames .build-fuzz/corpus/FrameDecoderFuzzer
fi

for target in "${targets[@]}"; do
    case "$target" in
        # -max_len: a few 4 KiB frames.
        FrameDecoderFuzzer) seeds=Fuzz/corpus max_len=16384 ;;
        MeshJSONFuzzer) seeds=Fuzz/json-corpus max_len=4096 ;;
        *) echo "fuzz.sh: no fuzz target '$target' (FrameDecoderFuzzer, MeshJSONFuzzer)" >&2; exit 2 ;;
    esac
    build=(swift build -c release --scratch-path .build-fuzz --product "$target"
           -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library)
    "${build[@]}"
    binary="$("${build[@]}" --show-bin-path)/$target"
    mkdir -p ".build-fuzz/corpus/$target" ".build-fuzz/artifacts/$target"
    echo "fuzzing $target for ${seconds}s"
    # -timeout: any single input taking 10 s is a hang; -rss_limit_mb: an unbounded
    # allocation shows up as a failure, not a slow machine.
    "$binary" \
        -max_total_time="$seconds" \
        -max_len="$max_len" \
        -timeout=10 \
        -rss_limit_mb=1024 \
        -print_final_stats=1 \
        -artifact_prefix=".build-fuzz/artifacts/$target/" \
        ".build-fuzz/corpus/$target" "$seeds"
done
