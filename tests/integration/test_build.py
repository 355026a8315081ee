"""
Build hardening of the shipped binaries, sluice and sluice-session (issue 10),
read with readelf (and sluice-session's library list: only what a session uses):

  - a position-independent executable (ELF type DYN, FLAGS_1 PIE), so ASLR
    moves the binary's own code and data too;
  - full RELRO: a GNU_RELRO segment and immediate binding (BIND_NOW / FLAGS_1
    NOW), so the GOT is read-only once the loader is done;
  - a non-executable stack (GNU_STACK without E), and the stack protector;
  - _FORTIFY_SOURCE: glibc's checked calls (__memcpy_chk, __snprintf_chk ...)
    are what the binary imports.

CMakeLists.txt sets the flags (-fPIE -pie, -Wl,-z,relro,-z,now,
-fstack-clash-protection, -fcf-protection, -D_FORTIFY_SOURCE=3); stack-clash
probes and the level of FORTIFY leave no mark readelf can show reliably.

    cd tests/integration && SLUICE_BIN=../../build/sluice python3 -m unittest -v test_build
"""

import os
import re
import shutil
import subprocess
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("SLUICE_SRCDIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
SLUICE_BIN = os.environ.get("SLUICE_BIN") or os.path.join(REPO, "build", "sluice")


def readelf(path, *args):
    r = subprocess.run(["readelf", "--wide"] + list(args) + [path],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("readelf %s %s failed: %s" % (" ".join(args), path, r.stderr))
    return r.stdout


class TestHardenedBinary(unittest.TestCase):
    BIN = SLUICE_BIN

    @classmethod
    def setUpClass(cls):
        if shutil.which("readelf") is None:
            raise AssertionError("readelf not found: install binutils")
        if not (os.path.isfile(cls.BIN) and os.access(cls.BIN, os.X_OK)):
            raise AssertionError("%s not found: run cmake --build build "
                                 "(looked for %s)" % (os.path.basename(cls.BIN), cls.BIN))
        cls.header = readelf(cls.BIN, "--file-header")
        cls.segments = readelf(cls.BIN, "--program-headers")
        cls.dynamic = readelf(cls.BIN, "--dynamic")
        cls.dynsyms = readelf(cls.BIN, "--dyn-syms")

    def test_pie(self):
        m = re.search(r"^\s*Type:\s+(\S+)", self.header, re.M)
        self.assertIsNotNone(m, self.header)
        self.assertEqual(m.group(1), "DYN",
                         "%s is not position-independent (ELF type %s; build with "
                         "-fPIE -pie)" % (self.BIN, m.group(1)))
        self.assertRegex(self.dynamic, r"\(FLAGS_1\)\s+Flags:.*\bPIE\b",
                         "no PIE in FLAGS_1: a shared object, not a PIE executable")

    def test_relro(self):
        self.assertRegex(self.segments, re.compile(r"^\s*GNU_RELRO\s", re.M), "no GNU_RELRO segment "
                         "(link with -Wl,-z,relro)\n" + self.segments)

    def test_bind_now(self):
        now = (re.search(r"\(FLAGS\)\s+.*\bBIND_NOW\b", self.dynamic) or
               re.search(r"\(FLAGS_1\)\s+Flags:.*\bNOW\b", self.dynamic) or
               re.search(r"\(BIND_NOW\)", self.dynamic))
        self.assertTrue(now, "no BIND_NOW in the dynamic section: only partial RELRO "
                        "(link with -Wl,-z,now)\n" + self.dynamic)

    def test_stack_not_executable(self):
        m = re.search(r"^\s*GNU_STACK\s+(?:\S+\s+){5}([RWE ]{3})\s", self.segments, re.M)
        self.assertIsNotNone(m, "no GNU_STACK segment: the loader would make the "
                             "stack executable\n" + self.segments)
        self.assertNotIn("E", m.group(1), "the stack is executable\n" + self.segments)

    def test_fortified(self):
        if "__asan_init" in self.dynsyms or "__asan_report" in self.dynsyms:
            self.skipTest("an ASan build: FORTIFY is off there by design (it needs "
                          "optimisation and clashes with the sanitizer); the shipped build is checked")
        # __stack_chk_fail is the stack protector's, not FORTIFY's
        chk = sorted(set(re.findall(r"\b(__\w+_chk)\b", self.dynsyms)) - {"__stack_chk_fail"})
        self.assertTrue(chk, "no __*_chk symbols: built without -D_FORTIFY_SOURCE "
                        "(or without optimisation)")
        # the calls sluice makes most: bounded copies and formatting
        self.assertTrue({"__memcpy_chk", "__snprintf_chk", "__vsnprintf_chk"} & set(chk),
                        "fortified symbols present but none of the common ones: %s" % chk)

    def test_stack_protector(self):
        self.assertRegex(self.dynsyms, r"\b__stack_chk_fail\b",
                         "no __stack_chk_fail: built without -fstack-protector-strong")


class TestHardenedSession(TestHardenedBinary):
    """The session program the supervisor runs per connection: as hardened,
    and linking only what a session uses (the roles' libraries would cost
    every idle session their relocated data)."""
    BIN = os.path.join(os.path.dirname(SLUICE_BIN), "sluice-session")

    def test_needed(self):
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", self.dynamic)
        names = {n.split(".so")[0] for n in needed}
        names -= {"libasan", "libubsan", "libstdc++", "libgcc_s", "libm"}   # a sanitizer build
        self.assertEqual(names, {"libssh", "libcrypto", "libjansson", "libseccomp", "libc"},
                         "%s links %s (CMakeLists.txt: --as-needed; keep the YAML loader, "
                         "SQLite, crypt(3) ... out of the session's objects)" % (self.BIN, needed))


if __name__ == "__main__":
    unittest.main()
