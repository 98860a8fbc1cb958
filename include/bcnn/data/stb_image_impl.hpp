#pragma once
// Internal: stb_image (Debian's libstb-dev, /usr/include/stb) compiled into
// this translation unit as static functions, JPEG and PNG only. Include this
// header, never <stb_image.h> directly: a translation unit that also compiles
// stb_image itself (STB_IMAGE_IMPLEMENTATION without STB_IMAGE_STATIC) would
// clash with it. stb keeps its failure reason thread-local, so decoding from
// several threads at once is safe.

#if defined(STBI_INCLUDE_STB_IMAGE_H) && !defined(BCNN_STB_IMAGE_IMPL_HPP)
#error "bcnn/data/stb_image_impl.hpp must be the first inclusion of stb_image.h in this translation unit"
#endif
#define BCNN_STB_IMAGE_IMPL_HPP

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_NO_STDIO  // bcnn reads the file itself, so errors can name it

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wcast-qual"
#endif

#include <stb_image.h>

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
