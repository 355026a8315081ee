#!/bin/sh
# fuzz/run.sh - one fuzzing run of a target built by fuzz/build.sh, as the
# figures in fuzz/README.md were taken (run from the repository root):
#   fuzz/run.sh NAME [SECONDS]          (default 600)
# It fuzzes a working copy of fuzz/corpus/NAME in build-fuzz/work/NAME (low
# priority, temp files in /dev/shm so fsyncs are cheap, 2 GiB RSS cap),
# logs to build-fuzz/work/NAME.log and keeps crash-*/timeout-*/leak-* in
# build-fuzz/work/NAME-artifacts/. Extra libFuzzer flags: $FUZZ_ARGS (the
# stateful fuzz_sftpseq ran with FUZZ_ARGS="-len_control=0 -max_len=2048"
# so its programs are long from the start). Then fuzz/run.sh -merge NAME minimises
# the working corpus back into fuzz/corpus/NAME (what ctest replays).
set -eu
b=build-fuzz
if [ "$1" = -merge ]; then
	n=$2
	mkdir -p "$b/work/$n-min" "$b/work/$n-keep"
	rm -f "$b/work/$n-min"/* "$b/work/$n-keep"/*
	# inputs that once crashed stay as they are, by name (regressions)
	cp fuzz/corpus/"$n"/crash_* "$b/work/$n-keep"/ 2>/dev/null || true
	# by edges, not hit counts, to keep the corpus small (~200 files)
	TMPDIR=/dev/shm nice -n 19 "$b/fuzz_$n" -merge=1 -use_counters=0 \
	    -close_fd_mask=3 -rss_limit_mb=2048 "$b/work/$n-min" \
	    fuzz/corpus/"$n" "$b/work/$n" >"$b/work/$n-merge.log" 2>&1
	rm -f fuzz/corpus/"$n"/*
	cp "$b/work/$n-min"/* fuzz/corpus/"$n"/
	cp "$b/work/$n-keep"/* fuzz/corpus/"$n"/ 2>/dev/null || true
	echo "fuzz/corpus/$n: $(ls fuzz/corpus/"$n" | wc -l) files"
	exit 0
fi
n=$1
t=${2:-600}
mkdir -p "$b/work/$n" "$b/work/$n-artifacts"
cp -n fuzz/corpus/"$n"/* "$b/work/$n"/ 2>/dev/null || true
TMPDIR=/dev/shm exec nice -n 19 "$b/fuzz_$n" -max_total_time="$t" \
    -rss_limit_mb=2048 -close_fd_mask=3 -print_final_stats=1 ${FUZZ_ARGS:-} \
    -artifact_prefix="$b/work/$n-artifacts/" "$b/work/$n" fuzz/corpus/"$n" \
    >"$b/work/$n.log" 2>&1
