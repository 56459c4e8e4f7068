# fuzz.cmake - the fuzz harnesses (included by the top CMakeLists.txt).
#
# Every harness tests/fuzz/fuzz_<name>.c is built two ways:
#  - GG_FUZZ=ON (clang): a libFuzzer binary, run by CTest test fuzz.<name>
#    (label fuzz) for GG_FUZZ_SECONDS (or $FUZZ_SECONDS) via run_fuzz.sh;
#  - otherwise: replay_<name>, the harness over its seed corpus and
#    regression inputs (label unit), so gcc and ASan builds replay them too.
file(GLOB GG_FUZZ_HARNESSES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
set(GG_FUZZ_SECONDS 20 CACHE STRING "seconds each fuzz test runs under CTest")
foreach(h ${GG_FUZZ_HARNESSES})
  get_filename_component(hname ${h} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" short ${hname})
  if(GG_FUZZ)
    add_executable(${hname} ${h})
    target_link_libraries(${hname} PRIVATE gg)
    target_link_options(${hname} PRIVATE -fsanitize=fuzzer)
    add_test(NAME fuzz.${short}
      COMMAND sh ${CMAKE_SOURCE_DIR}/tests/fuzz/run_fuzz.sh $<TARGET_FILE:${hname}> ${short}
              ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}/fuzz ${GG_FUZZ_SECONDS})
    set_tests_properties(fuzz.${short} PROPERTIES LABELS fuzz
      TIMEOUT 3700)
  elseif("fuzz_replay_${short}" MATCHES "${GG_TESTS}")
    add_executable(replay_${short} ${h} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c)
    target_link_libraries(replay_${short} PRIVATE gg)
    add_test(NAME unit.fuzz_replay_${short}
      COMMAND replay_${short} ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${short}
              ${CMAKE_SOURCE_DIR}/tests/fuzz/regress/${short})
    set_tests_properties(unit.fuzz_replay_${short} PROPERTIES LABELS unit TIMEOUT 300)
  endif()
endforeach()
if(GG_FUZZ)
  set(GG_FUZZ_TARGETS "")
  foreach(h ${GG_FUZZ_HARNESSES})
    get_filename_component(hname ${h} NAME_WE)
    list(APPEND GG_FUZZ_TARGETS ${hname})
  endforeach()
  add_custom_target(fuzzers DEPENDS ${GG_FUZZ_TARGETS})
endif()
