# CTest checks of the train_bloodcells program as a user runs it:
#   cmake -DPROGRAM=<train_bloodcells> -DDATA=<blood-cells folder> -DWORK_DIR=<scratch> -P check_program.cmake
# 1. --help exits 0 with the usage text; a bad option value exits 2 naming it;
#    a --limit too small to fill the validation part exits 1 saying so;
#    --device cuda where it cannot run (a build without bcnn::cuda, or no
#    usable GPU) exits 1 saying why, before loading any image; --precision
#    bf16/fp16 without --device cuda exits 2 saying it needs it, and an fp16
#    run on the GPU reports its precision and loss scaling.
# 2. A one-epoch run on a few real images (32x32) writes every file of RUN/;
#    with --warmup-epochs and --recalibrate-bn the report says so and gives
#    each test's scores before and after the BatchNorm re-estimation.
# 3. A data folder holding a corrupt image: the run skips it and the report
#    names it; with --strict the run stops with status 1 naming the file.
# 4. Pretrained backbones without their ImageNet files (no network here):
#    --model vgg16 needs --weights (or --random-backbone-weights), a missing
#    file and --weights with the custom model exit 2; a custom-CNN checkpoint
#    given as VGG16 weights exits 1 naming the problem. Short runs with random
#    backbones write every file and the report warns that their accuracies
#    mean nothing: VGG16 frozen (features computed once, the head trained on
#    them; run twice with a cache folder, the second run reads the features
#    from it and trains alike) and DenseNet201 with its last block unfrozen
#    (the whole model).
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
run(too_few 1 --data "${DATA}" --limit 2 ${quick} --out "${WORK_DIR}/too_few")
expect_contains(too_few "the validation (10% of TRAIN) part holds no images (--limit 2 leaves too few to split)")
run(bad_device 2 --device gpu)
expect_contains(bad_device "--device expects cpu or cuda, got 'gpu'")
expect_contains(help "--device D")
execute_process(COMMAND "${PROGRAM}" --device cuda --data "${DATA}" --limit 6 ${quick} --out "${WORK_DIR}/cuda"
                RESULT_VARIABLE cuda_status OUTPUT_VARIABLE cuda_out ERROR_VARIABLE cuda_err)
if(NOT cuda_status EQUAL 0)  # 0 on a machine with a GPU and a CUDA build
  set(cuda_output "${cuda_out}${cuda_err}")
  expect_contains(cuda "train_bloodcells: error: --device cuda: ")
  string(FIND "${cuda_output}" "loading images" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "cuda: --device cuda failed only after loading images:\n${cuda_output}")
  endif()
endif()

run(bad_precision 2 --precision fp8)
expect_contains(bad_precision "--precision expects fp32, bf16 or fp16, got 'fp8'")
run(precision_on_cpu 2 --precision bf16)
expect_contains(precision_on_cpu "--precision bf16 needs --device cuda")
expect_contains(help "--precision P")
# fp16 mixed precision (with loss scaling) on the GPU: trains where it can, else the device error as above.
execute_process(COMMAND "${PROGRAM}" --device cuda --precision fp16 --data "${DATA}" --limit 6 ${quick}
                        --out "${WORK_DIR}/cuda_fp16"
                RESULT_VARIABLE fp16_status OUTPUT_VARIABLE fp16_out ERROR_VARIABLE fp16_err)
set(cuda_fp16_output "${fp16_out}${fp16_err}")
if(fp16_status EQUAL 0)
  file(READ "${WORK_DIR}/cuda_fp16/report.md" cuda_fp16_report_output)
  expect_contains(cuda_fp16_report "Precision: fp16 mixed precision")
  expect_contains(cuda_fp16_report "Loss scaling: final scale")
else()
  expect_contains(cuda_fp16 "train_bloodcells: error: --device cuda: ")
endif()

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
             "re-estimated over" "- As trained: accuracy" "Precision: fp32")
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

# 4. Pretrained backbones. One thread: their runs do more arithmetic, and
# two OpenMP threads slow down many times over when CTest runs other tests
# beside them.
set(backbone_quick --image-size 32 --epochs 1 --batch 8 --no-cache --threads 1)
run(no_weights 2 --model vgg16)
expect_contains(no_weights "--model vgg16 needs --weights FILE")
run(missing_weights 2 --model densenet201 --weights "${WORK_DIR}/nothing.safetensors")
expect_contains(missing_weights "--weights: no such file '${WORK_DIR}/nothing.safetensors'")
run(custom_weights 2 --model custom --weights "${WORK_DIR}/smoke/best.safetensors")
expect_contains(custom_weights "--weights is for a pretrained backbone")
run(checkpoint_as_weights 1 --model vgg16 --weights "${WORK_DIR}/smoke/best.safetensors" --data "${DATA}"
    ${backbone_quick} --out "${WORK_DIR}/checkpoint_as_weights")
expect_contains(checkpoint_as_weights "cannot be the vgg16 backbone's weights")
expect_contains(checkpoint_as_weights "is a full checkpoint")

# expect_run(<name> <texts>...): RUN/ of the run <name> holds every file and its report every text.
function(expect_run name)
  foreach(file best.safetensors history.csv report.md curves.png confusion.png confusion_test_simple.png)
    if(NOT EXISTS "${WORK_DIR}/${name}/${file}")
      message(FATAL_ERROR "${name}: ${WORK_DIR}/${name}/${file} was not written\n${${name}_output}")
    endif()
  endforeach()
  file(READ "${WORK_DIR}/${name}/report.md" report)
  foreach(text IN LISTS ARGN)
    string(FIND "${report}" "${text}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "${name}: report.md does not contain '${text}':\n${report}")
    endif()
  endforeach()
endfunction()

run(vgg16_frozen 0 --model vgg16 --random-backbone-weights --data "${DATA}" --limit 6 ${backbone_quick}
    --out "${WORK_DIR}/vgg16_frozen")
expect_contains(vgg16_frozen "WARNING: RANDOM BACKBONE")
expect_run(vgg16_frozen "> **WARNING: RANDOM BACKBONE" "its accuracies mean nothing" "Backbone weights: **random**"
           "Backbone frozen, as in the study" "Feature cache: used" "kept in memory only" "caffe mode"
           "## Test results")
foreach(pass 1 2)
  run(vgg16_cached_${pass} 0 --model vgg16 --random-backbone-weights --data "${DATA}" --limit 6 --image-size 32
      --epochs 1 --batch 8 --threads 1 --cache "${WORK_DIR}/cache" --out "${WORK_DIR}/vgg16_cached_${pass}")
endforeach()
expect_run(vgg16_cached_1 "written to the feature cache")
expect_run(vgg16_cached_2 "read from the feature cache")
file(READ "${WORK_DIR}/vgg16_cached_1/history.csv" computed)
file(READ "${WORK_DIR}/vgg16_cached_2/history.csv" read_back)
string(REGEX REPLACE ",[0-9.e-]+,([0-9.e-]+,[0-9.e-]+)\n" ",\\1\n" computed "${computed}")  # drop the seconds
string(REGEX REPLACE ",[0-9.e-]+,([0-9.e-]+,[0-9.e-]+)\n" ",\\1\n" read_back "${read_back}")
if(NOT computed STREQUAL read_back)
  message(FATAL_ERROR "vgg16_cached: training on cached features differs:\n${computed}\n${read_back}")
endif()
run(densenet201_unfrozen 0 --model densenet201 --random-backbone-weights --unfreeze-last-block --data "${DATA}"
    --limit 6 ${backbone_quick} --out "${WORK_DIR}/densenet201_unfrozen")
expect_run(densenet201_unfrozen "> **WARNING: RANDOM BACKBONE" "conv5 and the final bn train"
           "Feature cache: not used (part of the backbone trains)" "torch mode")
