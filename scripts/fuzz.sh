#!/usr/bin/env bash
# Builds the libFuzzer target for the AMQP frame decoder and runs it for a bounded time.
#
#   scripts/fuzz.sh [SECONDS]      (default 60)
#
# Exits non-zero if libFuzzer finds a crash, a trap (a failed round-trip check) or a hang;
# the input that caused it is left in .build-fuzz/artifacts/. Reproduce one with
#   .build-fuzz/release/FrameDecoderFuzzer .build-fuzz/artifacts/crash-…
# New interesting inputs accumulate in .build-fuzz/corpus/ (git-ignored); the committed
# seeds are in Fuzz/corpus/ (regenerate with Fuzz/make-corpus.py).
set -euo pipefail

seconds="${1:-60}"
cd "$(dirname "$0")/.."

export CONDUCTOR_FUZZ=1   # makes Package.swift declare the FrameDecoderFuzzer target
build=(swift build -c release --scratch-path .build-fuzz --product FrameDecoderFuzzer
       -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library)
"${build[@]}"
binary="$("${build[@]}" --show-bin-path)/FrameDecoderFuzzer"

mkdir -p .build-fuzz/corpus .build-fuzz/artifacts
echo "fuzzing the frame decoder for ${seconds}s"
# -max_len: a few 4 KiB frames; -timeout: any single input taking 10 s is a hang;
# -rss_limit_mb: an unbounded allocation shows up as a failure, not a slow machine.
"$binary" \
    -max_total_time="$seconds" \
    -max_len=16384 \
    -timeout=10 \
    -rss_limit_mb=1024 \
    -print_final_stats=1 \
    -artifact_prefix=.build-fuzz/artifacts/ \
    .build-fuzz/corpus Fuzz/corpus
