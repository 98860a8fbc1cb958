#pragma once
// Internal: the two stb single-file libraries the pictures use, compiled
// into every translation unit that includes them with internal linkage
// (static functions), so no separate .c file and no clash between units.
// stb_easy_font.h: ASCII text as quads. stb_image_write.h: the PNG encoder.
// Their own warnings are theirs, silenced here only.
//
// A translation unit that includes this header must not compile
// stb_image_write's implementation itself (STB_IMAGE_WRITE_IMPLEMENTATION).

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif

#include <stb_easy_font.h>

#ifndef INCLUDE_STB_IMAGE_WRITE_H
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>
#undef STB_IMAGE_WRITE_IMPLEMENTATION
#endif

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
