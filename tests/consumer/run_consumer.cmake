# Builds and runs tests/consumer against bcnn, from a clean work folder.
#   cmake -DMODE=find_package|add_subdirectory -DBCNN_SOURCE_DIR=... -DBCNN_BINARY_DIR=...
#         -DWORK_DIR=... -DGENERATOR=... -DMAKE_PROGRAM=... -DCXX_COMPILER=... -DBUILD_TYPE=...
#         -P run_consumer.cmake
# find_package: installs the built project into WORK_DIR/prefix first and
# checks that the consumer found bcnn there and nowhere else.

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "consumer (${MODE}): failed (${rc}): ${command}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
if(MODE STREQUAL "find_package")
  run("${CMAKE_COMMAND}" --install "${BCNN_BINARY_DIR}" --prefix "${prefix}")
  set(mode_args "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
elseif(MODE STREQUAL "add_subdirectory")
  set(mode_args "-DBCNN_SOURCE_DIR=${BCNN_SOURCE_DIR}" -DBCNN_WITH_CUDA=OFF)
else()
  message(FATAL_ERROR "run_consumer.cmake: MODE must be find_package or add_subdirectory, got '${MODE}'")
endif()

run("${CMAKE_COMMAND}" -S "${BCNN_SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/build" -G "${GENERATOR}"
    "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}"
    ${mode_args})

if(MODE STREQUAL "find_package")
  file(STRINGS "${WORK_DIR}/build/CMakeCache.txt" found_dir REGEX "^bcnn_DIR:")
  string(REGEX REPLACE "^bcnn_DIR:[A-Z]+=" "" found_dir "${found_dir}")
  file(REAL_PATH "${prefix}" real_prefix)
  file(REAL_PATH "${found_dir}" real_found)
  string(FIND "${real_found}/" "${real_prefix}/" at)
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "consumer (find_package): found bcnn in '${found_dir}', not in the install prefix '${prefix}'")
  endif()
endif()

run("${CMAKE_COMMAND}" --build "${WORK_DIR}/build")
run("${WORK_DIR}/build/bcnn_consumer")
