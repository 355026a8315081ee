#!/bin/sh
# fuzz/build.sh - builds the libFuzzer targets (clang, ASan+UBSan) into
# build-fuzz/ (or $1): one binary per fuzz/fuzz_<name>.c (or only the names
# given after the directory). Run from the repository root:
#   fuzz/build.sh && build-fuzz/fuzz_sftp -close_fd_mask=2 -max_total_time=300 \
#       fuzz/corpus/sftp
# Every target links one instrumented static library of the whole tree
# (the same sources as CMake's sluicecore), so a target never misses a
# function its code under test calls; objects are rebuilt only when their
# source or a header is newer. fuzz/README.md has the runs and figures.
# Add every crash-*/timeout-* input it finds to fuzz/corpus/<target>/ once
# fixed: ctest's fuzz.<target>_replay replays the corpus on every run.
set -eu
out=${1:-build-fuzz}
[ $# -gt 0 ] && shift
cc=${CC:-clang}
jobs=${JOBS:-2}
command -v "$cc" >/dev/null || { echo "fuzz/build.sh: $cc not found (apt-get install clang)" >&2; exit 1; }
mkdir -p "$out/obj"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
pkgs="libssh libcurl gpgme openssl yaml-0.1 sqlite3 jansson libcrypt libseccomp
    expat libmicrohttpd"
cflags="-g -O1 $san -fsanitize=fuzzer-no-link -D_GNU_SOURCE -DSLUICE_TEST_HOOKS
    -DSLUICE_VERSION=\"fuzz\" -I. $(pkg-config --cflags $pkgs)"
libs=$(pkg-config --libs $pkgs)
export cc cflags out

# the library: every module, as CMakeLists.txt's SLUICE_SRC
newest_h=$(ls -t */*.h | head -1)
for src in common/*.c policy/*.c server/*.c uploader/*.c audit/*.c spool/*.c \
    control/*.c metrics/*.c notify/*.c; do
	obj="$out/obj/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')"
	if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$newest_h" -nt "$obj" ]; then
		echo "$src $obj"
	fi
done | xargs -r -n 2 -P "$jobs" sh -c 'echo "  CC $0"; $cc $cflags -c "$0" -o "$1"'
rm -f "$out/libsluicefuzz.a"
ar rcs "$out/libsluicefuzz.a" "$out"/obj/*.o

if [ $# -gt 0 ]; then
	targets="$*"
else
	targets=$(ls fuzz/fuzz_*.c | sed 's,fuzz/fuzz_,,; s,\.c$,,')
fi
for t in $targets; do
	# fuzz_s3xml answers libcurl's calls itself (see its header)
	extra=""
	[ "$t" = s3xml ] && extra="-Wl,--wrap=curl_easy_perform \
	    -Wl,--wrap=curl_easy_getinfo -Wl,--wrap=curl_easy_setopt"
	echo "  LD fuzz_$t"
	$cc -g -O1 $san -fsanitize=fuzzer -D_GNU_SOURCE -I. "fuzz/fuzz_$t.c" \
	    "$out/libsluicefuzz.a" $libs -lm $extra -o "$out/fuzz_$t"
done
echo "built in $out: $(echo $targets | sed 's/\([a-z0-9_]*\)/fuzz_\1/g')"
