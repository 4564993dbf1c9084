# What `cmake --install` puts where, and the Debian package of it (CPack's DEB
# generator): `cmake --build build --target package` writes build/ferry_VERSION_ARCH.deb.
include(GNUInstallDirs)
find_program(PYTHON3 python3 REQUIRED)
find_program(GZIP gzip REQUIRED)

# Man pages: roff made from docs/man/PAGE.md by tools/mkman (with the sections of
# docs/configuration.md and docs/datastores.md they include), and gzipped.
set(ferry_man_dir ${CMAKE_BINARY_DIR}/man)
file(MAKE_DIRECTORY ${ferry_man_dir})
set(ferry_man_files)
foreach(page ferry.1 mount.ferry.8)
  add_custom_command(
    OUTPUT ${ferry_man_dir}/${page} ${ferry_man_dir}/${page}.gz
    COMMAND ${PYTHON3} ${PROJECT_SOURCE_DIR}/tools/mkman --version ${PROJECT_VERSION}
            ${PROJECT_SOURCE_DIR}/docs/man/${page}.md ${ferry_man_dir}/${page}
    COMMAND ${GZIP} -n -9 -f -k ${ferry_man_dir}/${page}
    DEPENDS ${PROJECT_SOURCE_DIR}/tools/mkman ${PROJECT_SOURCE_DIR}/docs/man/${page}.md
            ${PROJECT_SOURCE_DIR}/docs/configuration.md ${PROJECT_SOURCE_DIR}/docs/datastores.md
    COMMENT "Generating man page ${page}"
    VERBATIM)
  list(APPEND ferry_man_files ${ferry_man_dir}/${page}.gz)
endforeach()
add_custom_target(man ALL DEPENDS ${ferry_man_files})

# mount(8) runs mount.ferry for type ferry and mount.fuse.ferry for fuse.ferry (the type
# the kernel shows): the second name is a link to the first, its man page too.
file(CREATE_LINK mount.ferry ${CMAKE_BINARY_DIR}/mount.fuse.ferry SYMBOLIC)
file(CREATE_LINK mount.ferry.8.gz ${ferry_man_dir}/mount.fuse.ferry.8.gz SYMBOLIC)

install(TARGETS ferry RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(PROGRAMS packaging/mount.ferry ${CMAKE_BINARY_DIR}/mount.fuse.ferry
        DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(FILES ${ferry_man_dir}/ferry.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${ferry_man_dir}/mount.ferry.8.gz ${ferry_man_dir}/mount.fuse.ferry.8.gz
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES packaging/ferry-mount@.service DESTINATION lib/systemd/system)
install(FILES packaging/completion.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME ferry)
# README.md beside docs/, as in the tree, so that its links work
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
file(GLOB ferry_docs ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${ferry_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)
install(FILES packaging/mount.conf DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ferry)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Azure Blob and Files mounts (FUSE) and a run-launcher for ML training nodes")
string(JOIN "\n" CPACK_PACKAGE_DESCRIPTION
  "ferry gets training data onto machine-learning nodes and results back off them."
  "'ferry mount' mounts an Azure Blob container or an Azure Files share at a"
  "directory (FUSE; from fstab through mount.ferry, or with the unit"
  "ferry-mount@.service); 'ferry run' runs Azure ML command jobs and Batch AI job"
  "files, on one node or on many under Slurm or Open MPI; 'ferry cp' and 'ferry ls'"
  "copy and list datastores.")
set(FERRY_DEB_MAINTAINER "ferry maintainers <maintainers@users.noreply.r-seed-114c3bd3.example>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${FERRY_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# The libraries' packages come from dpkg-shlibdeps where it is (dpkg-dev); fuse3 is the
# mount and unmount tooling (fusermount3), which no library link shows.
find_program(DPKG_SHLIBDEPS dpkg-shlibdeps)
if(DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3")
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6, libfuse3-3, libcurl4, libssl3, libxml2, \
liblz4-1, libyaml-0-2, libjansson4, fuse3")
endif()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/deb/postinst ${PROJECT_SOURCE_DIR}/packaging/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
