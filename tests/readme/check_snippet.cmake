# Checks that the README's usage example is, character for character, the
# file it names, so the code a reader copies is code the build compiles.
#   cmake -DREADME=README.md -DSOURCE_ROOT=<repo> -DSNIPPET=examples/minimal.cpp -P check_snippet.cmake
# In the README the example is the first ```cpp block after the line
#   <!-- snippet: examples/minimal.cpp -->

file(READ "${README}" readme)
file(READ "${SOURCE_ROOT}/${SNIPPET}" expected)

set(marker "<!-- snippet: ${SNIPPET} -->")
string(FIND "${readme}" "${marker}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${README}: no '${marker}' line")
endif()
string(SUBSTRING "${readme}" ${at} -1 rest)
set(fence "```cpp\n")
string(FIND "${rest}" "${fence}" open)
if(open EQUAL -1)
  message(FATAL_ERROR "${README}: no ```cpp block after '${marker}'")
endif()
string(LENGTH "${fence}" fence_length)
math(EXPR body_start "${open} + ${fence_length}")
string(SUBSTRING "${rest}" ${body_start} -1 rest)
string(FIND "${rest}" "\n```" close)
if(close EQUAL -1)
  message(FATAL_ERROR "${README}: the ```cpp block after '${marker}' is not closed")
endif()
math(EXPR body_length "${close} + 1")
string(SUBSTRING "${rest}" 0 ${body_length} snippet)

if(NOT snippet STREQUAL expected)
  file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/readme_snippet.cpp" "${snippet}")
  message(FATAL_ERROR "The README's example differs from ${SNIPPET}; compare with\n"
                      "  diff ${SOURCE_ROOT}/${SNIPPET} ${CMAKE_CURRENT_BINARY_DIR}/readme_snippet.cpp\n"
                      "and make them identical (the README shows the example the build compiles).")
endif()
message(STATUS "README example matches ${SNIPPET}")
