#!/bin/sh
# fuzz/build.sh - builds the libFuzzer targets (clang, ASan+UBSan) into
# build-fuzz/ (or $1): fuzz_sftp, fuzz_config, fuzz_stsxml, fuzz_proxy. Run from the repository root:
#   fuzz/build.sh && build-fuzz/fuzz_sftp -close_fd_mask=2 -max_total_time=300 \
#       fuzz/corpus/sftp
# Add every crash-*/timeout-* input it finds to fuzz/corpus/<target>/ once
# fixed: ctest's fuzz.<target>_replay replays the corpus on every run.
set -eu
out=${1:-build-fuzz}
cc=${CC:-clang}
command -v "$cc" >/dev/null || { echo "fuzz/build.sh: $cc not found (apt-get install clang)" >&2; exit 1; }
mkdir -p "$out"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -I."
deps=$(pkg-config --cflags --libs libssh libcurl gpgme openssl yaml-0.1 sqlite3 jansson libcrypt expat)
# the code under test and what it calls (policy/ and common/ are pure)
lib="common/*.c policy/*.c"
$cc $flags fuzz/fuzz_sftp.c server/sftp.c $lib $deps -o "$out/fuzz_sftp"
$cc $flags fuzz/fuzz_config.c $lib $deps -o "$out/fuzz_config"
$cc $flags fuzz/fuzz_stsxml.c uploader/stsxml.c uploader/credproc.c common/log.c common/util.c \
    $deps -o "$out/fuzz_stsxml"
$cc $flags fuzz/fuzz_proxy.c server/proxy.c $deps -o "$out/fuzz_proxy"
echo "built $out/fuzz_sftp $out/fuzz_config $out/fuzz_stsxml $out/fuzz_proxy"
