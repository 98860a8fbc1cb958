# Defines the INTERFACE target bcnn::stb over the stb single-file headers
# (Debian: libstb-dev, which installs them under /usr/include/stb).
if(NOT TARGET bcnn::stb)
  find_path(BCNN_STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb REQUIRED)
  add_library(bcnn::stb INTERFACE IMPORTED)
  set_target_properties(bcnn::stb PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${BCNN_STB_INCLUDE_DIR}")
endif()
