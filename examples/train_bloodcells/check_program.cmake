# CTest checks of the train_bloodcells program as a user runs it:
#   cmake -DPROGRAM=<train_bloodcells> -DDATA=<blood-cells folder> -DWORK_DIR=<scratch> -P check_program.cmake
# 1. --help exits 0 with the usage text; a bad option value exits 2 naming it.
# 2. A one-epoch run on a few real images (32x32) writes every file of RUN/;
#    with --warmup-epochs and --recalibrate-bn the report says so and gives
#    each test's scores before and after the BatchNorm re-estimation.
# 3. A data folder holding a corrupt image: the run skips it and the report
#    names it; with --strict the run stops with status 1 naming the file.
# The folder of case 3 links to real images (never copies them) and adds a
# corrupt file of its own, all under WORK_DIR.

# run(<name> <expected status> <args>...): runs the program, fails unless it
# exits with the expected status; its output is left in ${name}_output.
function(run name expected)
  execute_process(COMMAND "${PROGRAM}" ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status STREQUAL "${expected}")
    message(FATAL_ERROR "${name}: train_bloodcells ${ARGN}\nexited with ${status}, expected ${expected}\n${out}\n${err}")
  endif()
  set(${name}_output "${out}${err}" PARENT_SCOPE)
endfunction()

function(expect_contains name text)
  string(FIND "${${name}_output}" "${text}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${name}: the output does not contain '${text}':\n${${name}_output}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(quick --image-size 32 --epochs 1 --batch 8 --no-cache --threads 2)

# 1. Usage.
run(help 0 --help)
expect_contains(help "usage: train_bloodcells [options]")
run(bad_epochs 2 --epochs zero)
expect_contains(bad_epochs "--epochs expects a whole number")
run(unknown_flag 2 --colour blue)
expect_contains(unknown_flag "--colour")

# 2. A short run on the real images: every output file is written.
run(smoke 0 --data "${DATA}" --limit 6 ${quick} --warmup-epochs 0.5 --recalibrate-bn --out "${WORK_DIR}/smoke")
foreach(file best.safetensors recalibrated.safetensors history.csv report.md curves.png confusion.png
        confusion_test_simple.png)
  if(NOT EXISTS "${WORK_DIR}/smoke/${file}")
    message(FATAL_ERROR "smoke: ${WORK_DIR}/smoke/${file} was not written\n${smoke_output}")
  endif()
endforeach()
file(READ "${WORK_DIR}/smoke/report.md" report)
foreach(text "## Test results" "### TEST_SIMPLE" "--limit 6" "macro avg" "linear warm-up over 0.50 epochs"
             "re-estimated over" "- As trained: accuracy")
  string(FIND "${report}" "${text}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "smoke: report.md does not contain '${text}':\n${report}")
  endif()
endforeach()

# 3. A corrupt image among real ones.
set(images "${DATA}/dataset2-master/images")
set(bad_data "${WORK_DIR}/bad-data")
foreach(split TRAIN TEST TEST_SIMPLE)
  set(count 3)
  if(split STREQUAL "TRAIN")
    set(count 10)  # 9 to train, 1 to validate per class
  endif()
  foreach(class EOSINOPHIL LYMPHOCYTE MONOCYTE NEUTROPHIL)
    file(MAKE_DIRECTORY "${bad_data}/${split}/${class}")
    file(GLOB real "${images}/${split}/${class}/*.jpeg")
    list(SORT real)
    list(SUBLIST real 0 ${count} real)
    foreach(path IN LISTS real)
      get_filename_component(name "${path}" NAME)
      file(CREATE_LINK "${path}" "${bad_data}/${split}/${class}/${name}" SYMBOLIC)
    endforeach()
  endforeach()
endforeach()
set(corrupt "${bad_data}/TRAIN/MONOCYTE/corrupt.jpeg")
file(WRITE "${corrupt}" "this is not a JPEG")

run(skips 0 --data "${bad_data}" ${quick} --out "${WORK_DIR}/skips")
expect_contains(skips "skipped 1 image: '${corrupt}'")
file(READ "${WORK_DIR}/skips/report.md" report)
string(FIND "${report}" "${corrupt}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "skips: report.md does not name ${corrupt}:\n${report}")
endif()

run(strict 1 --data "${bad_data}" ${quick} --strict --out "${WORK_DIR}/strict")
expect_contains(strict "${corrupt}")
