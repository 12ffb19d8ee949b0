#!/usr/bin/env bash
# Builds the starting corpora of the fuzz targets in fuzz/corpus/<target>/
# from the real messages in tests/fixtures/samples/ and tests/fixtures/streams/.
# (The kept, minimised corpus is tests/fixtures/fuzz/<target>/; pass both
# directories to `cargo fuzz run`, see docs/security.md.)
set -euo pipefail
cd "$(dirname "$0")"
fixtures=../tests/fixtures
mkdir -p corpus/decode corpus/fold corpus/store

n=0
# decode: every sample as it is, minified, and every line of every stream.
for f in "$fixtures"/samples/*.json; do
    base=$(basename "$f" .json)
    cp "$f" "corpus/decode/sample-$base"
    jq -c . "$f" > "corpus/decode/min-$base"
done
for f in "$fixtures"/streams/*.jsonl; do
    while IFS= read -r line; do
        n=$((n + 1))
        printf '%s' "$line" > "corpus/decode/stream-line-$n"
    done < "$f"
done

# fold and store: whole streams, each sample as a one-line stream, a stream
# of all samples, and a few `@N` compositions (N indexes the stream lines,
# then the samples; see checks::seed_messages).
for target in fold store; do
    for f in "$fixtures"/streams/*.jsonl; do
        cp "$f" "corpus/$target/stream-$(basename "$f" .jsonl)"
    done
    for f in "$fixtures"/samples/*.json; do
        jq -c . "$f" > "corpus/$target/sample-$(basename "$f" .json)"
    done
    for f in "$fixtures"/samples/*.json; do jq -c . "$f"; done > "corpus/$target/all-samples"
    printf '@0\n@3\n@5\n@1\n' > "corpus/$target/refs-a"
    printf '@10\n@11\n@12\n@13\n@14\n@10\n' > "corpus/$target/refs-b"
    seq 0 39 | sed 's/^/@/' > "corpus/$target/refs-all"
    seq 39 -1 0 | sed 's/^/@/' > "corpus/$target/refs-all-reversed"
done
echo "seeded: $(ls corpus/decode | wc -l) decode, $(ls corpus/fold | wc -l) fold, $(ls corpus/store | wc -l) store"
