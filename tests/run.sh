#!/usr/bin/env bash
# The README's test command and the only way CI tests (.ci/run calls it):
# installs what the tests need, then builds and runs every unit and
# integration test twice with ctest: a normal build (build/), then an
# ASan+UBSan build (build-asan/) in which any memory error or undefined
# behaviour fails the run.
#
#   tests/run.sh                 everything
#   tests/run.sh -R integration  extra arguments go to both ctest runs
#   SLUICE_SANITIZE=0 tests/run.sh   skip the sanitizer pass (quicker, local use)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)

"$top/deploy/install-deps.sh" --test
# The tests run as root, so sluice separates its roles: it needs its users.
if [ "$(id -u)" -eq 0 ]; then "$top/deploy/create-users.sh"; fi

echo "== build and test: $top/build"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_WERROR=ON -DSLUICE_TEST_HOOKS=ON >/dev/null
cmake --build "$top/build" -j"$jobs"
(cd "$top/build" && ctest --output-on-failure --timeout 900 "$@")

if [ "${SLUICE_SANITIZE:-1}" != 0 ]; then
  echo "== build and test with ASan+UBSan: $top/build-asan"
  cmake -S "$top" -B "$top/build-asan" -DCMAKE_BUILD_TYPE=Debug -DSLUICE_WERROR=ON \
    -DSLUICE_TEST_HOOKS=ON -DSLUICE_SANITIZE=ON >/dev/null
  cmake --build "$top/build-asan" -j"$jobs"
  export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd "$top/build-asan" && ctest --output-on-failure --timeout 900 "$@")
fi
