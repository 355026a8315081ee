# The Debian package: `cmake --build build --target package` writes
# build/sluice_<version>_<arch>.deb (CPack's DEB generator). What goes where
# is below; docs/operator-guide.md says how it is installed, upgraded and
# purged, and tests/integration/test_package.py checks the result.
#
# Absolute destinations are the package's own paths (Debian 12 layout); a
# plain `cmake --install` puts them there too.

install(TARGETS sluice RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# the SFTP session program: `sluice serve` looks for it beside itself, then
# in ../libexec/sluice (CMakeLists.txt: SLUICE_SESSION_DIR)
install(TARGETS sluice-session RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/sluice)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/systemd/sluice.service
  ${CMAKE_SOURCE_DIR}/deploy/systemd/sluice.socket
  DESTINATION /lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/sysusers.d/sluice.conf
  DESTINATION /usr/lib/sysusers.d)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/tmpfiles.d/sluice.conf
  DESTINATION /usr/lib/tmpfiles.d)
# the conffile, 0640 root:root: only the supervisor (root) reads it, and it
# holds partners' password hashes
install(FILES ${CMAKE_SOURCE_DIR}/deploy/sluice.yaml.example
  DESTINATION /etc/sluice RENAME sluice.yaml
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/sluice.yaml.example
  ${CMAKE_SOURCE_DIR}/docs/operator-guide.md
  ${CMAKE_SOURCE_DIR}/docs/configuration.md
  ${CMAKE_SOURCE_DIR}/docs/audit.md
  DESTINATION share/doc/sluice)

# Man pages, gzipped as Debian policy wants them.
find_program(GZIP_EXECUTABLE gzip REQUIRED)
set(SLUICE_MAN_PAGES sluice.8 sluice.yaml.5)
set(SLUICE_MAN_GZ "")
foreach(page ${SLUICE_MAN_PAGES})
  string(REGEX MATCH "[0-9]$" section ${page})
  set(gz ${CMAKE_BINARY_DIR}/man/${page}.gz)
  add_custom_command(OUTPUT ${gz}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND ${GZIP_EXECUTABLE} -9n -c ${CMAKE_SOURCE_DIR}/deploy/man/${page} > ${gz}
    DEPENDS ${CMAKE_SOURCE_DIR}/deploy/man/${page} VERBATIM)
  list(APPEND SLUICE_MAN_GZ ${gz})
  install(FILES ${gz} DESTINATION share/man/man${section})
endforeach()
add_custom_target(man ALL DEPENDS ${SLUICE_MAN_GZ})

if(SLUICE_TEST_HOOKS)
  message(STATUS "SLUICE_TEST_HOOKS is ON: a package built from this tree "
    "carries the test hooks; release packages: -DSLUICE_TEST_HOOKS=OFF")
endif()
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sluice)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "sluice maintainers <sluice@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "SFTP gateway that ships partners' verified files to S3")
set(CPACK_PACKAGE_DESCRIPTION
  "sluice accepts files from partners over SFTP (public key or password, per
partner address allowlists), checks completion, checksums and OpenPGP
signatures, and uploads each finished file to S3 or a local directory,
with a hash-chained, sealed audit trail. Sessions run sandboxed as their
own user; the roles run as the service user.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# gpgme runs gpg; the maintainer scripts use adduser when systemd-sysusers
# is not there
set(CPACK_DEBIAN_PACKAGE_DEPENDS "gnupg, adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_SOURCE_DIR}/deploy/debian/conffiles
  ${CMAKE_SOURCE_DIR}/deploy/debian/postinst
  ${CMAKE_SOURCE_DIR}/deploy/debian/prerm
  ${CMAKE_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
